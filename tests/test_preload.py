"""Preload servers: a Python tool imported once, each hook run a fork of it, same as a plain run.

Every test uses real processes: a console script with this interpreter's shebang (as pip
writes one), its server started by a real hook or by ``preload.run``, and /proc to see which
process did what.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_worktree_gates import preload
from pytest_worktree_gates.hookstart import clean_env, search_path
from tests.conftest import git
from tests.hookrepos import PY, hook_env, install, make_repo

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="preload servers run on Linux only"
)

# The tool's module: imported once by a server, run by each fork. Each run appends a record.
TOOL_MODULE = """\
import json, os, subprocess, sys, time

IMPORTED_BY = os.getpid()
if "WTG_IMPORT_LOG" in os.environ:  # each process that imports the tool, a server too
    with open(os.environ["WTG_IMPORT_LOG"], "a") as imports:
        imports.write(f"{IMPORTED_BY}\\n")


def main():
    files = sys.argv[1:]
    record = {
        "pid": os.getpid(), "imported_by": IMPORTED_BY, "ppid": os.getppid(),
        "argv0": sys.argv[0], "executable": sys.executable, "files": files, "cwd": os.getcwd(),
        "mark": os.environ.get("WTG_MARK"), "author_date": os.environ.get("GIT_AUTHOR_DATE"),
    }
    with open(os.environ["WTG_TOOL_LOG"], "a") as log:
        log.write(json.dumps(record) + "\\n")
    if any("sleep" in open(name).read() for name in files if os.path.exists(name)):
        child = subprocess.Popen(["sleep", "300"])
        with open(os.environ["WTG_TOOL_LOG"] + ".child", "w") as note:
            note.write(str(child.pid))
        time.sleep(300)
    if any("hold" in open(name).read() for name in files if os.path.exists(name)):
        release = os.environ["WTG_TOOL_LOG"] + ".release"
        for _ in range(600):  # until the test lets it go (30 s at most)
            if os.path.exists(release):
                break
            time.sleep(0.05)
    if any("pool" in open(name).read() for name in files if os.path.exists(name)):
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(2) as pool:
            print("squares", pool.map(len, files))
    bad = [name for name in files if "bad" in open(name).read()]
    for name in bad:
        print(f"{name}:1: bad line")
    print(f"checked {len(files)} files", file=sys.stderr)
    return 3 if bad else 0
"""


def write_tool(folder: Path, name: str = "checker") -> Path:
    """A console script as pip writes it, with the module it imports beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}_main.py").write_text(TOOL_MODULE)
    script = folder / name
    script.write_text(
        f"#!{PY}\nimport sys\nfrom {name}_main import main\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n"
    )
    script.chmod(0o755)
    return script


def records(log: Path) -> list[dict[str, object]]:
    """The tool's runs on files (not the runner asking its --version, for the cache key)."""
    lines = log.read_text().splitlines() if log.exists() else []
    runs = [json.loads(line) for line in lines]
    return [run for run in runs if run["files"] != ["--version"]]


def preloaded(record: dict[str, object]) -> bool:
    """Was this run a fork of a server (imported by another process)?"""
    return record["imported_by"] != record["pid"]


def servers(script: Path, root: Path | None = None) -> list[int]:
    """The pids of the preload servers of ``script`` (for the work tree ``root``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = b"pytest_worktree_gates.preload" in words and str(script).encode() in words
        if ours and (root is None or str(root).encode() in words):
            found.append(int(entry.name))
    return found


def listening(pid: int) -> bool:
    """Does the process hold a listening preload socket (bound, and done importing)?"""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return False
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        # Flags 00010000: accepting connections.
        if len(fields) >= 8 and fields[6] in inodes and fields[3] == "00010000":
            return fields[7].startswith("@worktree-gates-preload-")
    return False


def wait_until(condition: object, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_for_server(script: Path) -> int:
    wait_until(lambda: any(listening(pid) for pid in servers(script)), f"a server of {script}")
    (pid,) = [pid for pid in servers(script) if listening(pid)]
    return pid


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def tools(tmp_path: Path) -> Iterator[Path]:
    """A folder for console scripts; every server of one is stopped at the end."""
    folder = tmp_path / "tools"
    folder.mkdir()
    yield folder
    for script in folder.iterdir():
        for pid in servers(script):
            os.kill(pid, signal.SIGTERM)  # a clean exit: coverage data is written
            wait_until(lambda pid=pid: not alive(pid), f"server {pid} to stop", 10)


def project(tmp_path: Path, script: Path, extra: str = "") -> Path:
    checks = (
        '[tool.worktree-gates.checks]\npreset = "none"\n'
        f"tool = {{ run = {json.dumps(str(script) + ' {files}')}{extra} }}\n"
    )
    root = make_repo(tmp_path / "repo", checks)
    install(root)
    return root


def commit_env(log: Path, **more: str) -> dict[str, str]:
    env = hook_env()
    env.update(WTG_TOOL_LOG=str(log), WTG_MARK="marked", **more)
    return env


def git_commit(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "commit", "-q", "-m", "change"], cwd=root, env=env, capture_output=True, text=True
    )


def stage(root: Path, name: str, text: str) -> None:
    (root / name).write_text(text)
    git(root, "add", name)


@dataclass(frozen=True)
class Warm:
    """A project whose hook ran the tool once, plainly, and whose server is now up."""

    script: Path
    root: Path
    log: Path
    env: dict[str, str]
    server: int


def warmed(tmp_path: Path, tools: Path) -> Warm:
    script = write_tool(tools)
    root = project(tmp_path, script)
    log = tmp_path / "tool.log"
    env = commit_env(log)
    stage(root, "warm.py", "x = 1\n")
    assert git_commit(root, env).returncode == 0
    return Warm(script, root, log, env, wait_for_server(script))


def test_the_second_commit_runs_the_tool_in_a_fork_of_its_server(
    tmp_path: Path, tools: Path
) -> None:
    warm = warmed(tmp_path, tools)
    stage(warm.root, "two.py", "y = 2\n")
    done = git_commit(warm.root, warm.env)
    assert done.returncode == 0, done.stderr
    first, second = records(warm.log)
    assert not preloaded(first)
    assert preloaded(second)
    assert second["imported_by"] == second["ppid"] == warm.server
    # The fork is the plain run in all that the tool can see: argv, directory, environment
    # (down to what git sets for this very commit).
    for run in (first, second):
        assert run["argv0"] == str(warm.script)
        assert run["executable"] == PY  # the script's own interpreter, as its #! line says
        assert run["cwd"] == str(warm.root)
        assert run["mark"] == "marked"
        assert run["author_date"]
    assert (first["files"], second["files"]) == (["warm.py"], ["two.py"])


@pytest.mark.parametrize(
    ("content", "shown"),
    [
        ("bad = 1\n", "broken.py:1: bad line"),
        # As black does for many files: a process pool, with the start method that imports
        # the main script anew in each worker.
        ("pool = 1\nbad = 2\n", "squares [9]"),
    ],
)
def test_a_failing_run_reports_the_same_whether_preloaded_or_not(
    tmp_path: Path, tools: Path, content: str, shown: str
) -> None:
    warm = warmed(tmp_path, tools)
    stage(warm.root, "broken.py", content)
    forked = git_commit(warm.root, warm.env)
    plain = git_commit(warm.root, {**warm.env, preload.IDLE_VARIABLE: "0"})
    assert [preloaded(run) for run in records(warm.log)[1:]] == [True, False]
    assert forked.returncode == plain.returncode == 1
    assert forked.stdout == plain.stdout
    assert forked.stderr == plain.stderr
    assert shown in forked.stdout + forked.stderr


def test_real_mypy_in_a_fork_prints_what_a_plain_mypy_prints(tmp_path: Path) -> None:
    mypy = Path(PY).parent / "mypy"
    root = tmp_path / "project"
    root.mkdir()
    (root / "typed.py").write_text(
        'count: int = "three"\n\n\ndef f(x: int) -> str:\n    return x\n'
    )
    env = clean_env()
    env["PATH"] = search_path()
    argv = ["mypy", "typed.py", "-O", "json", "--cache-dir", str(tmp_path / "cache")]
    plain = subprocess.run(argv, cwd=root, env=env, capture_output=True)
    try:
        forked = None
        deadline = time.monotonic() + 30
        while forked is None:  # the first request starts the server; then it answers
            assert time.monotonic() < deadline, "no mypy server answered"
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                run = preload.run(str(mypy), argv, str(root), env, out.fileno(), err.fileno())
                if run is not None:
                    code = run.wait()
                    out.seek(0)
                    err.seek(0)
                    forked = (code, out.read(), err.read())
            time.sleep(0.05)
    finally:
        for pid in servers(mypy, root):  # the venv's mypy: other tests' servers are not ours
            os.kill(pid, signal.SIGTERM)
    assert forked == (plain.returncode, plain.stdout, plain.stderr)
    assert plain.returncode == 1
    assert b'"code": "assignment"' in plain.stdout
    assert b'"code": "return-value"' in plain.stdout


@dataclass(frozen=True)
class Started:
    """A server started through the API for a work tree, with the environment it was keyed by."""

    root: Path
    env: dict[str, str]
    pid: int


def start_server(tmp_path: Path, script: Path, log: Path, **settings: str) -> Started:
    root = tmp_path / "work"
    root.mkdir(exist_ok=True)
    env = {**clean_env(), "WTG_TOOL_LOG": str(log), **settings}
    with open(os.devnull, "wb") as null:  # the first request finds no server and starts one
        assert preload.run(str(script), [script.name], str(root), env, null.fileno(),
                           null.fileno()) is None  # fmt: skip
    return Started(root, env, wait_for_server(script))


def run_sleeper(
    tmp_path: Path, script: Path, log: Path, content: str = "sleep\n"
) -> preload.Forked:
    """A run through the API that sleeps (and starts a child that sleeps), once a server is up."""
    started = start_server(tmp_path, script, log)
    (started.root / "slow.py").write_text(content)
    argv = [script.name, "slow.py"]
    with open(os.devnull, "wb") as null:
        fd = null.fileno()
        forked = preload.run(str(script), argv, str(started.root), started.env, fd, fd)
    assert forked is not None
    return forked


def test_sigterm_lets_the_runs_in_flight_finish_and_takes_no_new_one(
    tmp_path: Path, tools: Path
) -> None:
    script = write_tool(tools)
    log = tmp_path / "tool.log"
    forked = run_sleeper(tmp_path, script, log, "hold\n")  # runs until released
    # The run's parent (a fork shares the server's command line, and for a moment its socket).
    server = int(Path(f"/proc/{forked.pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert server in servers(script)
    wait_until(lambda: len(records(log)) == 1, "the run to start")
    os.kill(server, signal.SIGTERM)
    wait_until(lambda: not listening(server), "the server to stop listening", 10)
    assert alive(server) and forked.poll() is None  # still there for the run in flight
    Path(f"{log}.release").touch()
    assert forked.wait() == 0  # finished, and its exit reported
    wait_until(lambda: not alive(server), "the server to exit once its run is done", 10)


def test_kill_stops_the_run_and_what_it_started(tmp_path: Path, tools: Path) -> None:
    script = write_tool(tools)
    log = tmp_path / "tool.log"
    forked = run_sleeper(tmp_path, script, log)
    child = Path(f"{log}.child")
    wait_until(child.exists, "the run to start its child")
    assert forked.poll() is None
    forked.kill()
    assert forked.wait() == -signal.SIGKILL
    wait_until(lambda: not alive(int(child.read_text())), "the run's child to be killed", 10)
    assert not alive(forked.pid)


def test_a_client_that_dies_takes_its_run_with_it(tmp_path: Path, tools: Path) -> None:
    script = write_tool(tools)
    log = tmp_path / "tool.log"
    code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from tests.test_preload import run_sleeper\n"
        "forked = run_sleeper(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))\n"
        "print(forked.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    client = subprocess.Popen(
        [PY, "-c", code, str(tmp_path), str(script), str(log)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert client.stdout is not None
    pid = int(client.stdout.readline())
    assert alive(pid)
    client.kill()  # no goodbye: the server sees the connection close
    client.wait()
    wait_until(lambda: not alive(pid), "the orphaned run to be killed", 10)


def test_a_tool_changed_on_disk_is_run_plainly_and_gets_a_new_server(
    tmp_path: Path, tools: Path
) -> None:
    warm = warmed(tmp_path, tools)
    # An upgrade in place: the module the server imported is not what is on disk any more.
    module = tools / "checker_main.py"
    module.write_text(module.read_text().replace('"mark":', '"upgraded": True, "mark":'))
    stage(warm.root, "two.py", "y = 2\n")
    assert git_commit(warm.root, warm.env).returncode == 0
    wait_until(lambda: not alive(warm.server), "the stale server to exit", 40)
    new = wait_for_server(warm.script)
    stage(warm.root, "three.py", "z = 3\n")
    assert git_commit(warm.root, warm.env).returncode == 0
    _, second, third = records(warm.log)
    assert not preloaded(second)
    assert second.get("upgraded") is True
    assert preloaded(third)
    assert third.get("upgraded") is True
    assert third["ppid"] == new != warm.server


def test_preload_false_never_starts_a_server(tmp_path: Path, tools: Path) -> None:
    script = write_tool(tools)
    root = project(tmp_path, script, ", preload = false")
    log = tmp_path / "tool.log"
    env = commit_env(log)
    for name in ("one.py", "two.py"):
        stage(root, name, f"{name[:3]} = 1\n")
        assert git_commit(root, env).returncode == 0
    assert servers(script) == []
    assert not any(preloaded(run) for run in records(log))


def test_idle_zero_runs_tools_plainly(tmp_path: Path, tools: Path) -> None:
    script = write_tool(tools)
    root = project(tmp_path, script)
    log = tmp_path / "tool.log"
    imports = tmp_path / "imports"
    env = commit_env(log, **{preload.IDLE_VARIABLE: "0", "WTG_IMPORT_LOG": str(imports)})
    for name in ("one.py", "two.py"):
        stage(root, name, f"{name[:3]} = 1\n")
        assert git_commit(root, env).returncode == 0
    assert servers(script) == []
    assert len(records(log)) == 2
    # No server imported the tool even for a moment (one started with this setting would
    # exit at once): every process that imported it ran it.
    ran = {json.loads(line)["pid"] for line in log.read_text().splitlines()}
    assert {int(pid) for pid in imports.read_text().split()} == ran


@pytest.mark.parametrize("value", ["soon", "-5", "inf", "nan"])
def test_a_bad_idle_setting_is_one_clear_error(tmp_path: Path, tools: Path, value: str) -> None:
    script = write_tool(tools)
    root = project(tmp_path, script)
    log = tmp_path / "tool.log"
    stage(root, "one.py", "x = 1\n")
    done = git_commit(root, commit_env(log, **{preload.IDLE_VARIABLE: value}))
    assert done.returncode == 1
    message = done.stdout + done.stderr
    assert f"{preload.IDLE_VARIABLE}={value!r} is not a number of seconds" in message
    assert "or 0 to run every tool plainly" in message
    assert "Traceback" not in message
    assert git(root, "rev-list", "--count", "HEAD").strip() == "1"  # nothing committed
    assert records(log) == []


def test_an_idle_server_exits_by_itself(tmp_path: Path, tools: Path) -> None:
    script = write_tool(tools)
    started = start_server(tmp_path, script, tmp_path / "log", **{preload.IDLE_VARIABLE: "0.5"})
    wait_until(lambda: not alive(started.pid), "the idle server to exit", 20)


def test_a_server_whose_work_tree_is_gone_exits(tmp_path: Path, tools: Path) -> None:
    script = write_tool(tools)
    # Idle for long: only the missing work tree can end it within the test.
    started = start_server(tmp_path, script, tmp_path / "log", **{preload.IDLE_VARIABLE: "600"})
    started.root.rmdir()
    wait_until(lambda: not alive(started.pid), "the server of a removed work tree to exit", 20)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_a_server_runs_nothing_for_another_user(tmp_path: Path, tools: Path) -> None:
    script = write_tool(tools)
    started = start_server(tmp_path, script, tmp_path / "tool.log")
    root, env = str(started.root), started.env
    key = preload.server_key(str(script), PY, root, env)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        pid = os.fork()
        if pid == 0:  # as "nobody", with the right key: the server must decline
            os.setuid(65534)
            # The client refuses a server of another user by itself: as a client that does
            # not, so that the server's own check is the one tested.
            preload._uid = lambda credentials: os.getuid()
            answer = preload.request(key, [script.name], root, env, (null, null, null))
            os._exit(0 if answer is None else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        own = preload.request(key, [script.name], root, env, (null, null, null))
        assert own is not None  # the same request from its own user is run
        assert own.wait() == 0
    finally:
        os.close(null)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_a_name_held_by_another_user_gets_no_run(tmp_path: Path, tools: Path) -> None:
    """A process of another user that took a server's name first is never sent a request."""
    script = write_tool(tools)
    root = tmp_path / "work"
    root.mkdir()
    env = {**clean_env(), "WTG_SECRET": "not for other users"}
    key = preload.server_key(str(script), PY, str(root), env)
    ready_read, ready_write = os.pipe()
    heard_read, heard_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a squatter, as "nobody": listens on the name and reports what it heard
        import socket

        os.setuid(65534)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(preload.address(key))
        listener.listen(1)
        os.write(ready_write, b"x")
        connection, _ = listener.accept()
        connection.settimeout(5)
        try:
            heard = connection.recv(65536)
        except OSError:
            heard = b""
        os.write(heard_write, heard or b"-")
        os._exit(0)
    os.close(ready_write)
    os.close(heard_write)
    assert os.read(ready_read, 1) == b"x"
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        answer = preload.request(key, [script.name], str(root), env, (null, null, null))
    finally:
        os.close(null)
    assert answer is None
    assert os.read(heard_read, 65536) == b"-"  # it heard nothing: no env, no streams
    os.waitpid(pid, 0)


def test_a_server_killed_mid_run_ends_the_wait(tmp_path: Path, tools: Path) -> None:
    script = write_tool(tools)
    log = tmp_path / "tool.log"
    forked = run_sleeper(tmp_path, script, log)
    wait_until(Path(f"{log}.child").exists, "the run to start")
    for pid in servers(script):
        os.kill(pid, signal.SIGKILL)
    assert forked.wait() == -signal.SIGKILL
    # The run dies with its server (nobody could tell its client how it ended, or stop it).
    wait_until(lambda: not alive(forked.pid), "the run of a killed server to die", 10)


def test_a_malformed_request_is_dropped_and_the_server_goes_on(tmp_path: Path, tools: Path) -> None:
    script = write_tool(tools)
    log = tmp_path / "tool.log"
    started = start_server(tmp_path, script, log)
    key = preload.server_key(str(script), PY, str(started.root), started.env)
    open_files = len(os.listdir(f"/proc/{started.pid}/fd"))
    null = os.open(os.devnull, os.O_WRONLY)
    fds = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in (null, null, null))
    garbage = [
        ([b"xx"], []),  # no length, no streams
        ([b"\0\0\0\x05abcde"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]),  # no request
        ([b"\0\0\1\0short"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]),  # cut short
    ]
    try:
        for message, ancillary in garbage:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(preload.address(key))
                client.sendmsg(message, ancillary)
                client.shutdown(socket.SHUT_WR)
                client.settimeout(10)
                assert client.recv(100) == b""  # dropped without a word
        forked = preload.request(key, [script.name], str(started.root), started.env,
                                 (null, null, null))  # fmt: skip
    finally:
        os.close(null)
    assert forked is not None
    assert forked.wait() == 0
    assert alive(started.pid)
    assert len(records(log)) == 1
    # The streams that came with each request were closed: no descriptor is left behind.
    wait_until(
        lambda: len(os.listdir(f"/proc/{started.pid}/fd")) == open_files, "no leaked fds", 10
    )


def test_only_a_console_script_of_this_environment_is_preloaded(tmp_path: Path) -> None:
    good = write_tool(tmp_path / "good")
    assert preload.script_of(str(good)) == (str(good), PY)
    cases = {
        "options": f"#!{PY} -u\nprint(1)\n",
        "elsewhere": "#!/opt/other/bin/python3\nprint(1)\n",
        "shell": f"#!{Path(PY).parent}/sh\necho 1\n",
        "binary": "\x7fELF....",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        assert preload.script_of(str(tmp_path / name)) is None, name
    assert preload.script_of(str(tmp_path / "missing")) is None
    assert preload.modules_of(str(good)) == ["sys", "checker_main"]


def test_the_server_key_ignores_what_git_and_the_shell_change_per_command(
    tmp_path: Path,
) -> None:
    script = write_tool(tmp_path)
    base = {"PATH": "/bin", "LANG": "C.UTF-8"}
    key = preload.server_key(str(script), PY, str(tmp_path), base)
    volatile = {**base, "GIT_AUTHOR_DATE": "@1 +0000", "PWD": "/x", "SHLVL": "3"}
    assert preload.server_key(str(script), PY, str(tmp_path), volatile) == key
    assert preload.server_key(str(script), PY, str(tmp_path), {**base, "LANG": "C"}) != key
    assert preload.server_key(str(script), PY, "/elsewhere", base) != key
    again = preload.server_key(str(script), PY, str(tmp_path), dict(reversed(base.items())))
    assert preload.address(again) == preload.address(key)


def test_the_server_module_says_how_to_start_it() -> None:
    done = subprocess.run(
        [PY, "-m", "pytest_worktree_gates.preload"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "usage: python -m pytest_worktree_gates.preload SCRIPT ROOT" in done.stderr


def test_a_commit_through_the_hooks_of_two_worktrees_uses_one_server_each(
    tmp_path: Path, tools: Path
) -> None:
    script = write_tool(tools)
    root = project(tmp_path, script)
    other = tmp_path / "other"
    git(root, "worktree", "add", "-q", "-b", "feature", str(other))
    (other / "pyproject.toml").write_text((root / "pyproject.toml").read_text())
    log = tmp_path / "tool.log"
    env = commit_env(log)
    for tree in (root, other):  # contents of their own: a blob checked once is cached
        stage(tree, "one.py", f"x = {tree.name!r}\n")
        assert git_commit(tree, env).returncode == 0
    wait_until(lambda: len([p for p in servers(script) if listening(p)]) == 2, "two servers")
    for tree in (root, other):
        stage(tree, "two.py", f"y = {tree.name!r}\n")
        assert git_commit(tree, env).returncode == 0
    last = records(log)[-2:]
    assert all(preloaded(run) for run in last)
    assert [run["cwd"] for run in last] == [str(root), str(other)]
    assert last[0]["ppid"] != last[1]["ppid"]
