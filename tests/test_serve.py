"""The integration gate's served app, end to end: a real HTTP server started by `pytest --gates`.

The app is a stdlib ``http.server`` script written into each project. It records its pid and
process group in ``pids/``, so every scenario can check that nothing it started is left running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import commit_all, init_repo

APP = '''
"""A tiny app for the serve tests: stdlib only, its behaviour chosen by flags."""
import http.server, json, os, signal, subprocess, sys

args = sys.argv[1:]
port = int(args[args.index("--port") + 1])


def record(pid):
    os.makedirs("pids", exist_ok=True)
    with open(f"pids/{pid}", "w") as out:
        out.write(str(os.getpgid(0)))


record(os.getpid())
print(f"app starting on port {port}", flush=True)
if "--exit-at-start" in args:
    print("config error: DATABASE_URL is not set", flush=True)
    sys.exit(3)
if "--ignore-term" in args:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "--with-child" in args:  # a worker process in the app's group
    record(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]).pid)
healthy = "--never-healthy" not in args


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            code, body = (200 if healthy else 503), {"ok": healthy}
        elif self.path == "/info":
            code, body = 200, {"pid": os.getpid(), "env": dict(os.environ)}
        else:
            code, body = 404, {}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *values):
        print("GET", self.path, flush=True)


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''

TESTS = """
import json, os, urllib.request
from pathlib import Path

import pytest


def info(url):
    with urllib.request.urlopen(url + "/info", timeout=30) as answer:
        return json.load(answer)


@pytest.mark.integration
@pytest.mark.parametrize("n", range(4))
def test_served(worktree_app, n):
    assert worktree_app.url == os.environ["WORKTREE_APP_URL"]
    assert worktree_app.url == f"http://127.0.0.1:{worktree_app.port}"
    found = info(worktree_app.url)
    assert found["env"]["APP_PORT"] == str(worktree_app.port)
    assert "GET /info" in worktree_app.logs
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path("seen").mkdir(exist_ok=True)
    Path(f"seen/{worker}-{n}").write_text(str(found["pid"]))
"""


def serve_table(flags: str = "", extra: str = "") -> str:
    return (
        "[tool.worktree-gates.gates.integration.serve]\n"
        f'command = "python app.py --port {{port}} {flags}"\n'
        'env = { APP_PORT = "{port}" }\n' + extra
    )


def project(root: Path, table: str, tests: str = TESTS, extra: str = "") -> Path:
    """A committed project at ``root`` whose integration gate serves ``app.py``."""
    (root / "pyproject.toml").write_text(table + extra)
    (root / "app.py").write_text(APP)
    (root / "test_app.py").write_text(tests)
    (root / ".gitignore").write_text("pids/\nseen/\n*.json\n__pycache__/\n")
    init_repo(root)
    commit_all(root, "app")
    return root


def run_gate(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    report = pytester.path / "gate.json"
    report.unlink(missing_ok=True)
    result = pytester.runpytest_subprocess(
        "--gates=integration", "-p", "no:cacheprovider", f"--gates-report=json:{report}", *args
    )
    return result, json.loads(report.read_text())


def health(report: dict) -> dict:
    return next(item for item in report["conditions"] if item["name"] == "serve.health")


def live_members(group: int) -> list[int]:
    """Processes of a process group that still run (zombies do not), read from /proc.

    Written apart from ``serving.group_members`` on purpose: ``stop`` relies on that one, so
    checking its work with it could not catch a bug in it.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def started(root: Path) -> dict[int, int]:
    """pid -> process group of every process the app recorded."""
    folder = root / "pids"
    return {int(path.name): int(path.read_text()) for path in folder.iterdir()}


def assert_nothing_left(root: Path, processes: int = 1) -> None:
    recorded = started(root)
    assert len(recorded) == processes, recorded
    left = {group: live_members(group) for group in set(recorded.values())}
    assert not any(left.values()), f"still running: {left}"


def app_lease(root: Path) -> int | None:
    database = root / ".git" / "worktree-gates" / "state.db"
    with closing(sqlite3.connect(database)) as db:
        row = db.execute("SELECT port FROM port_leases WHERE engine = 'app'").fetchone()
    return row[0] if row else None


def test_one_server_serves_every_xdist_worker(pytester: pytest.Pytester) -> None:
    root = project(pytester.path, serve_table())
    result, report = run_gate(pytester, "-n", "2")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["serve.health*healthy in * s*<= 30 s*pass"])
    condition = health(report)
    assert condition["passed"] is True
    assert condition["actual"] > 0 and condition["threshold"] == 30
    seen = {path.name: path.read_text() for path in (root / "seen").iterdir()}
    assert len(seen) == 4
    assert {name.split("-")[0] for name in seen} == {"gw0", "gw1"}
    assert len(set(seen.values())) == 1  # every worker talked to the same server
    url = condition["details"]["url"]
    assert url == f"http://127.0.0.1:{app_lease(root)}"
    assert_nothing_left(root)


def test_an_app_that_exits_at_start_fails_the_gate_with_its_last_lines(
    pytester: pytest.Pytester,
) -> None:
    root = project(pytester.path, serve_table("--exit-at-start"))
    result, report = run_gate(pytester, "-rs")
    assert result.ret == 6
    result.stdout.fnmatch_lines(
        [
            "serve.health*exited with code 3 before /health answered*FAIL",
            "serve.health (*app.py --port * --exit-at-start): exited with code 3*",
            "  config error: DATABASE_URL is not set",
            "gate integration FAILED: tests, serve.health (exit 6)*",
            "SKIPPED*worktree-gates: the app is not serving (exited with code 3*",
        ]
    )
    condition = health(report)
    assert condition["passed"] is False and condition["actual"] is None
    assert condition["details"]["output"].endswith("config error: DATABASE_URL is not set")
    assert not (root / "seen").exists()  # no test ran against a dead app
    assert_nothing_left(root)


def test_an_app_that_never_becomes_healthy_is_killed_after_the_timeout(
    pytester: pytest.Pytester,
) -> None:
    table = serve_table("--never-healthy --with-child", "timeout = 1\n")
    root = project(pytester.path, table)
    result, report = run_gate(pytester)
    assert result.ret == 6
    result.stdout.fnmatch_lines(["serve.health*no 2xx on /health within 1 s*<= 1 s*FAIL"])
    assert "GET /health" in health(report)["details"]["output"]  # it was asked, and said 503
    assert_nothing_left(root, processes=2)  # the app and its child


def test_an_app_that_ignores_sigterm_is_killed_after_the_grace_period(
    pytester: pytest.Pytester,
) -> None:
    root = project(pytester.path, serve_table("--ignore-term --with-child"))
    result, _ = run_gate(pytester)
    assert result.ret == 0, result.stdout.str()
    assert_nothing_left(root, processes=2)


WAITING = """
import os, time
from pathlib import Path

import pytest


@pytest.mark.integration
def test_waits_for_a_signal(worktree_app):
    if os.environ.get("HOLD"):
        Path("ready").write_text(worktree_app.url)
        time.sleep(120)
"""


def interrupted_gate(root: Path, number: int) -> tuple[int, str]:
    """Run the gate until its test waits, send ``number`` to pytest; its exit code and output."""
    ready = root / "ready"
    with subprocess.Popen(
        [sys.executable, "-m", "pytest", "--gates=integration", "-p", "no:cacheprovider"],
        cwd=root,
        env={**os.environ, "HOLD": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as gate:
        deadline = time.monotonic() + 60
        while not ready.exists() and gate.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), gate.communicate()[0].decode()
        gate.send_signal(number)
        output = gate.communicate(timeout=60)[0].decode()
    return gate.returncode, output


def test_ctrl_c_stops_the_app(pytester: pytest.Pytester) -> None:
    root = project(pytester.path, serve_table("--with-child"), tests=WAITING)
    code, output = interrupted_gate(root, signal.SIGINT)
    assert code == 2, output  # interrupted, as pytest reports it
    assert "gate integration did not run: the session ended early (exit 2)" in output
    assert_nothing_left(root, processes=2)


def test_kill_9_of_pytest_takes_the_app_with_it(pytester: pytest.Pytester) -> None:
    root = project(pytester.path, serve_table(), tests=WAITING)
    code, _ = interrupted_gate(root, signal.SIGKILL)
    assert code == -signal.SIGKILL
    (group,) = started(root).values()
    deadline = time.monotonic() + 30  # the kernel's SIGKILL is asynchronous
    while live_members(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert_nothing_left(root)
    result, report = run_gate(pytester)  # and the next run is not blocked
    assert result.ret == 0, result.stdout.str()
    assert health(report)["passed"] is True


def test_a_taken_port_moves_the_lease(pytester: pytest.Pytester) -> None:
    root = project(pytester.path, serve_table())
    result, _ = run_gate(pytester)
    assert result.ret == 0
    first = app_lease(root)
    assert first is not None
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        squatter.bind(("127.0.0.1", first))
        squatter.listen()
        result, report = run_gate(pytester)
    assert result.ret == 0, result.stdout.str()  # the tests reached the app, not the squatter
    moved = app_lease(root)
    assert moved is not None and moved != first
    assert health(report)["details"]["url"] == f"http://127.0.0.1:{moved}"
    assert_nothing_left(root, processes=2)  # one app per run


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            "python app.py --port {prot}",
            "*gates.integration.serve.command: unknown placeholder {prot}; known: {port}",
        ),
        (
            "no-such-server --port {port}",
            "*serve command 'no-such-server' not found; install it or change "
            "[[]tool.worktree-gates.gates.integration.serve] command",
        ),
    ],
)
def test_a_bad_command_is_a_usage_error_and_starts_nothing(
    pytester: pytest.Pytester, command: str, message: str
) -> None:
    table = f"[tool.worktree-gates.gates.integration.serve]\ncommand = '{command}'\n"
    root = project(pytester.path, table)
    result = pytester.runpytest_subprocess("--gates=integration", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()
    assert not (root / "pids").exists()
    assert not (root / ".git" / "worktree-gates" / "state.db").exists()


def test_worktree_app_outside_a_serving_gate_says_how_to_get_one(
    pytester: pytest.Pytester,
) -> None:
    root = project(pytester.path, serve_table())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "served and 0")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*worktree-gates: no app is served in this run; run a gate that has a serve table*"]
    )
    assert not (root / "pids").exists()


def read_line(process: subprocess.Popen[str], wanted: str) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if wanted in line:
            return line.strip()
    raise AssertionError(f"no line with {wanted!r}; exit {process.wait()}")


def test_serve_verb_runs_the_app_in_the_foreground_on_the_gates_port(
    pytester: pytest.Pytester,
) -> None:
    root = project(pytester.path, serve_table())
    result, report = run_gate(pytester)
    assert result.ret == 0
    gate_url = health(report)["details"]["url"]
    with subprocess.Popen(
        [sys.executable, "-m", "pytest_worktree_gates", "serve"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own job, as a shell starts it
    ) as verb:
        assert read_line(verb, "serving").endswith(f" at {gate_url}")
        read_line(verb, "healthy in")
        with urllib.request.urlopen(gate_url + "/info", timeout=30) as answer:
            info = json.load(answer)
        assert info["env"]["APP_PORT"] == gate_url.rsplit(":", 1)[1]
        assert info["env"]["WORKTREE_APP_URL"] == gate_url
        verb.send_signal(signal.SIGINT)  # what Ctrl-C sends (the app gets it too in a terminal)
        assert verb.wait(timeout=30) == 130
    assert info["pid"] in started(root)
    assert_nothing_left(root, processes=2)  # the gate's app and the verb's


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--gate", "unit"],
            "gate 'unit' serves no app; add [tool.worktree-gates.gates.unit.serve]",
        ),
        (["--gate", "nope"], "unknown gate 'nope'"),
    ],
)
def test_serve_verb_refuses_a_gate_without_an_app(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    root = project(pytester.path, serve_table())
    done = subprocess.run(
        [sys.executable, "-m", "pytest_worktree_gates", "serve", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count("\n") == 1
    assert not (root / "pids").exists()


DATABASES = """
[tool.worktree-gates.databases]
backend = "local"
[tool.worktree-gates.databases.redis]
env = { REDIS_URL = "{url}" }
"""

MEETING = """
import json, os, time, urllib.request
from pathlib import Path

import pytest
import redis


def info(url):
    with urllib.request.urlopen(url + "/info", timeout=30) as answer:
        return json.load(answer)


@pytest.mark.integration
def test_both_apps_serve_at_once(worktree_app):
    # The app runs against this worktree's own database: the one exported to its tests.
    database = os.environ["REDIS_URL"]
    assert info(worktree_app.url)["env"]["REDIS_URL"] == database
    redis.Redis.from_url(database).set("owner", worktree_app.url)
    meeting = Path(os.environ["MEETING"])
    mine = {"url": worktree_app.url, "database": database}
    (meeting / "tmp").mkdir(exist_ok=True)
    (meeting / "tmp" / str(worktree_app.port)).write_text(json.dumps(mine))
    os.replace(meeting / "tmp" / str(worktree_app.port), meeting / f"{worktree_app.port}.json")
    wait_for(meeting, "*.json")
    other = next(path for path in meeting.glob("*.json") if path.stem != str(worktree_app.port))
    theirs = json.loads(other.read_text())
    assert info(theirs["url"])["env"]["REDIS_URL"] == theirs["database"]  # alive at once
    assert redis.Redis.from_url(database).get("owner").decode() == worktree_app.url
    (meeting / f"{worktree_app.port}.done").touch()
    wait_for(meeting, "*.done")  # neither app stops before the other asked it


def wait_for(meeting, pattern):
    deadline = time.monotonic() + 120
    while len(list(meeting.glob(pattern))) < 2:
        assert time.monotonic() < deadline, "the other worktree's gate never got this far"
        time.sleep(0.05)
"""


def test_two_worktrees_serve_at_once_each_on_its_own_port_and_database(tmp_path: Path) -> None:
    from tests.databases.helpers import add_worktree, purge, reachable_dir, require_local

    require_local("redis")
    with reachable_dir() as folder:
        root = folder / "shop"
        root.mkdir()
        project(root, serve_table(), tests=MEETING, extra=DATABASES)
        trees = [add_worktree(root, name) for name in ("one", "two")]
        meeting = tmp_path / "meeting"
        meeting.mkdir()
        try:
            gates = [
                subprocess.Popen(
                    [
                        sys.executable, "-m", "pytest", "--gates=integration",
                        "-p", "no:cacheprovider", f"--gates-report=json:{tmp_path / tree.name}",
                    ],
                    cwd=tree,
                    env={**os.environ, "MEETING": str(meeting)},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for tree in trees
            ]  # fmt: skip
            outputs = [gate.communicate(timeout=300)[0] for gate in gates]
            for gate, output in zip(gates, outputs, strict=True):
                assert gate.returncode == 0, output
            urls = {health(json.loads((tmp_path / tree.name).read_text()))["details"]["url"]
                    for tree in trees}  # fmt: skip
            met = [json.loads(path.read_text()) for path in meeting.glob("*.json")]
            assert {item["url"] for item in met} == urls and len(urls) == 2
            assert len({item["database"] for item in met}) == 2
            for tree in trees:
                assert_nothing_left(tree)
            # By hand, the app gets the same port and the same database as in the gate.
            with subprocess.Popen(
                [sys.executable, "-m", "pytest_worktree_gates", "serve"],
                cwd=trees[0], stdout=subprocess.PIPE, text=True, start_new_session=True,
            ) as verb:  # fmt: skip
                url = read_line(verb, "serving").rsplit(" at ", 1)[1]
                read_line(verb, "healthy in")
                with urllib.request.urlopen(url + "/info", timeout=30) as answer:
                    env = json.load(answer)["env"]
                verb.send_signal(signal.SIGTERM)  # as `kill` sends it
                assert verb.wait(timeout=30) == 143
            gate_run = next(item for item in met if item["url"] == url)
            assert env["REDIS_URL"] == gate_run["database"]
            assert_nothing_left(trees[0], processes=2)
        finally:
            for tree in trees:
                purge(tree)


def test_cleanup_releases_the_app_port_of_the_worktree(pytester: pytest.Pytester) -> None:
    root = project(pytester.path, serve_table())

    def wtg(*args: str, cwd: Path = root) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pytest_worktree_gates", *args],
            cwd=cwd, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    wtg("new", "login")
    tree = root / ".worktrees" / "login"
    gate = subprocess.run(
        [sys.executable, "-m", "pytest", "--gates=integration", "-p", "no:cacheprovider"],
        cwd=tree, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert gate.returncode == 0, gate.stdout
    assert app_lease(root) is not None  # leased for the new worktree
    wtg("cleanup", "login")
    assert app_lease(root) is None


def test_a_command_that_cannot_be_executed_fails_the_gate(pytester: pytest.Pytester) -> None:
    table = "[tool.worktree-gates.gates.integration.serve]\ncommand = './serve.sh --port {port}'\n"
    root = pytester.path
    (root / "serve.sh").write_text("python app.py --port $2\n")  # no #! line: exec refuses it
    (root / "serve.sh").chmod(0o755)
    project(root, table)
    result, report = run_gate(pytester)
    assert result.ret == 6
    result.stdout.fnmatch_lines(["serve.health*could not start: *Exec format error*FAIL"])
    assert health(report)["details"]["command"] == f"./serve.sh --port {app_lease(root)}"
    assert not (root / "pids").exists()


def test_a_command_given_as_a_path_is_found_from_a_subdirectory(
    pytester: pytest.Pytester,
) -> None:
    """A relative program path is the project root's, where the app starts, not pytest's cwd."""
    table = serve_table().replace("python app.py", "./serve.sh")
    root = pytester.path
    (root / "serve.sh").write_text(f'#!/bin/sh\nexec "{sys.executable}" app.py "$@"\n')
    (root / "serve.sh").chmod(0o755)
    project(root, table)
    (root / "sub").mkdir()
    report = root / "gate.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--gates=integration", "-p", "no:cacheprovider",
         f"--gates-report=json:{report}", str(root / "test_app.py")],
        cwd=root / "sub", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert health(json.loads(report.read_text()))["passed"] is True
    assert_nothing_left(root)
