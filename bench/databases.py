"""Benchmarks of the per-worktree databases, next to pytest-postgresql measured in the same run.

    .venv/bin/python bench/databases.py [--runs N] [--venv DIR] [--warm-only]

    # as root, a venv the postgres account can read:
    /usr/bin/python3 -m venv VENV && VENV/bin/pip install pytest-postgresql '.[all]'

pytest-postgresql's ``initdb`` refuses root, like ours. So when run as root, every pytest of
both tools runs as the unprivileged ``postgres`` account, from a venv it can read (``--venv``,
created with the system Python and ``pip install pytest-postgresql .[all]``), in a project that
account owns: the two tools always share one user, one Python, one pytest and one server build.
Our sessions end by starting a detached refill of the clone pool; the script waits for it to
finish before it times anything else (so it never competes with pytest-postgresql's run), and
reports the time until then too. Prints a markdown section for docs/benchmarks.md.
``--warm-only`` times only the warm session fixture (``2 * N`` pytest runs of each variant).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]

CONFIG = """
[tool.worktree-gates.databases]
backend = "local"
[tool.worktree-gates.databases.postgres]
setup = ["python -c \\"import os, psycopg; c = psycopg.connect(os.environ['WORKTREE_GATES_DATABASE_URL'], autocommit=True); c.execute('CREATE TABLE items (id serial primary key, name text)')\\""]
"""  # noqa: E501

WARM = "def test_warm(worktree_postgres):\n    assert worktree_postgres.port\n"

OURS = "".join(
    f"def test_{n}(isolated_postgres):\n    assert isolated_postgres.database\n\n"
    for n in range(20)
)

# Setup and teardown times per test at microsecond resolution (``--durations`` rounds to 10 ms).
TIMING = """
import time

import pytest

_times = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _times.append(("setup", item.name, time.perf_counter() - start))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _times.append(("teardown", item.name, time.perf_counter() - start))


def pytest_terminal_summary(terminalreporter):
    for phase, name, seconds in _times:
        terminalreporter.write_line(f"BENCH {phase} {name} {seconds:.6f}")
"""

THEIRS = """
import pytest
from pytest_postgresql import factories

postgresql_proc = factories.postgresql_proc(port=None)
postgresql = factories.postgresql("postgresql_proc")


@pytest.fixture
def db(postgresql):
    postgresql.execute("CREATE TABLE items (id serial primary key, name text)")
    return postgresql

""" + "".join(f"def test_{n}(db):\n    assert db.info.dbname\n\n" for n in range(20))


class Runner:
    """Runs commands as the benchmark's user with the benchmark's venv."""

    def __init__(self, venv: Path, work: Path) -> None:
        self.venv = venv
        self.work = work
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        pg_bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        self.path = os.pathsep.join(
            [str(venv / "bin"), *(str(p) for p in pg_bin[-1:]), os.environ.get("PATH", "")]
        )

    def run(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": self.path,
            "HOME": str(self.work),
            "LC_ALL": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        done = subprocess.run(
            args,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            user=self.user.pw_uid if self.user else None,
            group=self.user.pw_gid if self.user else None,
            extra_groups=[] if self.user else None,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def own(self, path: Path) -> None:
        if self.user:
            for folder, _, files in os.walk(path):
                os.chown(folder, self.user.pw_uid, self.user.pw_gid)
                for name in files:
                    os.chown(Path(folder) / name, self.user.pw_uid, self.user.pw_gid)

    def python(self, code: str, cwd: Path) -> str:
        return self.run([str(self.venv / "bin" / "python"), "-c", code], cwd).stdout

    def pytest(self, cwd: Path, *args: str) -> tuple[float, str]:
        start = time.perf_counter()
        done = self.run(
            [str(self.venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", *args],
            cwd,
        )
        return time.perf_counter() - start, done.stdout


def durations(output: str, phase: str) -> list[float]:
    """Per-test ``phase`` times printed by the TIMING conftest, in test order."""
    found = re.findall(rf"^BENCH {phase} test_(\d+|warm) ([0-9.]+)$", output, re.M)
    return [float(seconds) for _, seconds in sorted(found, key=lambda item: item[0])]


def refilling() -> bool:
    """Whether a detached refill of the clone pool (started by a session's end) still runs."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"pytest_worktree_gates.databases.refill" in command:
            return True
    return False


def settled(start: float) -> float:
    """Wait for the refill to finish; seconds from ``start`` until it has."""
    while refilling():
        time.sleep(0.1)  # a scan of /proc costs a few ms: often enough, and little load
    return time.perf_counter() - start


def project(runner: Runner, root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "bench"], cwd=root, check=True)
    runner.own(root)
    return root


COLD = """
import time
from pathlib import Path
from pytest_worktree_gates.databases import service
from pytest_worktree_gates.cli.context import here
context = here()
place = service.Place(context.config, context.repo)
service.down(place, purge=True)
start = time.perf_counter()
service.ensure(place, "postgres")
print(time.perf_counter() - start)
"""


def docker_cold_starts(image: str, runs: int, work: Path) -> tuple[list[float], list[float]]:
    """Time to a ready PostgreSQL container: ours (``db up`` after ``db down --purge``) and
    testcontainers' ``PostgresContainer.start()``, same image, both publishing on 127.0.0.1."""
    import socket

    from testcontainers.postgres import PostgresContainer

    from pytest_worktree_gates.cli.context import here
    from pytest_worktree_gates.databases import service

    root = work / "docker"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[tool.worktree-gates.databases]\nbackend = "docker"\n'
        f'[tool.worktree-gates.databases.postgres]\nimage = "{image}"\n'
    )
    subprocess.run([*GIT, "init", "-q"], cwd=root, check=True)
    context = here(root)
    place = service.Place(context.config, context.repo)
    ours, theirs = [], []
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"  # its reaper image cannot be pulled here
    try:
        for _ in range(runs):
            service.down(place, purge=True)
            start = time.perf_counter()
            service.ensure(place, "postgres")
            ours.append(time.perf_counter() - start)
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            container = PostgresContainer(image, username="postgres", password="x", dbname="app")
            container.ports = {5432: ("127.0.0.1", port)}  # loopback only, as ours
            start = time.perf_counter()
            container.start()
            theirs.append(time.perf_counter() - start)
            container.stop()
    finally:
        service.down(place, purge=True)
    return ours, theirs


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--venv", type=Path, default=Path(sys.prefix))
    parser.add_argument(
        "--docker-image", help="also time a docker cold start against testcontainers with IMAGE"
    )
    parser.add_argument(
        "--warm-only", action="store_true", help="only time the warm session fixture"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wtg-bench-"))
    work.chmod(0o755)
    runner = Runner(args.venv, work)
    runner.own(work)
    ours = work / "ours"
    try:
        project(
            runner,
            ours,
            {
                "pyproject.toml": CONFIG,
                "conftest.py": TIMING,
                "test_warm.py": WARM,
                "test_iso.py": OURS,
            },
        )
        theirs = project(runner, work / "theirs", {"test_pp.py": THEIRS})

        runner.python(COLD, ours)  # builds the repo's initdb cache once
        runs = 0 if args.warm_only else args.runs
        cold = [float(runner.python(COLD, ours)) for _ in range(runs)]

        warm, warm_imported = [], []
        # pytest-postgresql's plugin imports psycopg at start-up: without it, the first row
        # includes the driver's import, as a project without that plugin has it.
        alone = ("-p", "no:pytest_postgresql")
        for _ in range(args.runs * 2):
            _, out = runner.pytest(ours, *alone, "test_warm.py")
            warm += durations(out, "setup")
            # The same with the driver imported at start-up, as an app that uses it has it.
            _, out = runner.pytest(ours, *alone, "-p", "psycopg", "test_warm.py")
            warm_imported += durations(out, "setup")

        ours_runs, refilled, theirs_runs, clone_setup, clone_total = [], [], [], [], []
        for _ in range(runs):
            start = time.perf_counter()
            seconds, out = runner.pytest(ours, "test_iso.py")
            ours_runs.append(seconds)
            # Our session leaves the pool's refill running; theirs is timed once it is done.
            refilled.append(settled(start))
            setups = durations(out, "setup")[1:]  # the first one also looks up the template
            teardowns = durations(out, "teardown")[1:]
            clone_setup += setups
            clone_total += [a + b for a, b in zip(setups, teardowns, strict=False)]
            seconds, _ = runner.pytest(theirs, "test_pp.py")
            theirs_runs.append(seconds)
        if args.docker_image and not args.warm_only:
            docker_ours, docker_theirs = docker_cold_starts(args.docker_image, args.runs, work)
    finally:
        with contextlib.suppress(SystemExit):  # stop our server even when a step failed
            runner.run([str(args.venv / "bin" / "worktree-gates"), "db", "down", "--purge"], ours)
        shutil.rmtree(work, ignore_errors=True)

    if args.warm_only:
        print(f"\n`python bench/databases.py --runs {args.runs} --warm-only`: medians of")
        print(f"{len(warm)} and {len(warm_imported)} fresh pytest processes.\n")
        print("| measurement | ours | target |\n| --- | --- | --- |")
        print(
            f"| warm session fixture setup (`worktree_postgres`), driver import included, ms | "
            f"{median(warm) * 1000:.0f} | - |"
        )
        print(f"| the same, PostgreSQL driver already imported (`-p psycopg`), ms | "
              f"{median(warm_imported) * 1000:.0f} | <= 50 |")  # fmt: skip
        return 0
    second_ours, second_theirs = median(ours_runs[1:]), median(theirs_runs[1:])
    rows = [
        ("cold local PostgreSQL (copy initdb cache, set password, start), s",
         f"{median(cold):.2f}", "-", "<= 1.0"),
        # The target is the fixture's own work: an app that uses PostgreSQL imports its driver
        # anyway, so the driver's import is reported but not counted against it.
        ("warm session fixture setup (`worktree_postgres`), driver import included, ms",
         f"{median(warm) * 1000:.0f}", "-", "-"),
        ("the same, PostgreSQL driver already imported (`-p psycopg`), ms",
         f"{median(warm_imported) * 1000:.0f}", "-", "<= 50"),
        ("`isolated_postgres` setup per test, ms", f"{median(clone_setup) * 1000:.1f}", "-",
         "<= 30"),
        ("`isolated_postgres` setup + teardown per test, ms",
         f"{median(clone_total) * 1000:.1f}", "-", "-"),
        ("20 tests with a database each, runs after the first, s", f"{second_ours:.2f}",
         f"{second_theirs:.2f}", "-"),
        ("the same, until the pool's refill after the session is done, s",
         f"{median(refilled[1:]):.2f}", "-", "-"),
        ("pytest-postgresql time / ours", f"{second_theirs / second_ours:.1f}x", "", ">= 3x"),
    ]  # fmt: skip
    if args.docker_image:
        rows.append(
            (f"docker cold start to ready, `{args.docker_image}`, s (testcontainers column)",
             f"{median(docker_ours):.2f}", f"{median(docker_theirs):.2f}", "-")
        )  # fmt: skip
    print("\n## Per-worktree databases\n")
    venv = " --venv VENV" if args.venv != Path(sys.prefix) else ""
    venv += f" --docker-image {args.docker_image}" if args.docker_image else ""
    print(f"`python bench/databases.py --runs {args.runs}{venv}`: medians; pytest-postgresql in")
    print("the same run, as the same user, with the same Python, pytest and PostgreSQL.\n")
    print("| measurement | ours | pytest-postgresql | target |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
