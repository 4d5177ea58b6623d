"""Benchmarks of the per-worktree databases, next to pytest-postgresql measured in the same run.

    .venv/bin/python bench/databases.py [--runs N] [--venv DIR]

    # as root, a venv the postgres account can read:
    /usr/bin/python3 -m venv VENV && VENV/bin/pip install pytest-postgresql '.[all]'

pytest-postgresql's ``initdb`` refuses root, like ours. So when run as root, every pytest of
both tools runs as the unprivileged ``postgres`` account, from a venv it can read (``--venv``,
created with the system Python and ``pip install pytest-postgresql .[all]``), in a project that
account owns: the two tools always share one user, one Python, one pytest and one server build.
Prints a markdown section for docs/benchmarks.md.
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
    """Per-test ``phase`` times from ``--durations=0 -vv`` output, in test order."""
    found = re.findall(rf"^([0-9.]+)s {phase}\s+\S+::test_(\d+|warm)", output, re.M)
    return [float(seconds) for seconds, _ in sorted(found, key=lambda item: item[1])]


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


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--venv", type=Path, default=Path(sys.prefix))
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
            {"pyproject.toml": CONFIG, "test_warm.py": WARM, "test_iso.py": OURS},
        )
        theirs = project(runner, work / "theirs", {"test_pp.py": THEIRS})

        runner.python(COLD, ours)  # builds the repo's initdb cache once
        cold = [float(runner.python(COLD, ours)) for _ in range(args.runs)]

        warm = []
        for _ in range(args.runs * 2):
            _, out = runner.pytest(ours, "test_warm.py", "--durations=0", "-vv")
            warm += durations(out, "setup")

        ours_runs, theirs_runs, clone_setup, clone_total = [], [], [], []
        for _ in range(args.runs):
            seconds, out = runner.pytest(ours, "test_iso.py", "--durations=0", "-vv")
            ours_runs.append(seconds)
            setups = durations(out, "setup")[1:]  # the first one also looks up the template
            teardowns = durations(out, "teardown")[1:]
            clone_setup += setups
            clone_total += [a + b for a, b in zip(setups, teardowns, strict=False)]
            seconds, _ = runner.pytest(theirs, "test_pp.py")
            theirs_runs.append(seconds)
    finally:
        with contextlib.suppress(SystemExit):  # stop our server even when a step failed
            runner.run([str(args.venv / "bin" / "worktree-gates"), "db", "down", "--purge"], ours)
        shutil.rmtree(work, ignore_errors=True)

    second_ours, second_theirs = median(ours_runs[1:]), median(theirs_runs[1:])
    rows = [
        ("cold local PostgreSQL (copy initdb cache, set password, start), s",
         f"{median(cold):.2f}", "-", "<= 1.0"),
        ("warm session fixture setup (`worktree_postgres`), ms",
         f"{median(warm) * 1000:.0f}", "-", "<= 50"),
        ("`isolated_postgres` setup per test, ms", f"{median(clone_setup) * 1000:.0f}", "-",
         "<= 30"),
        ("`isolated_postgres` setup + teardown per test, ms",
         f"{median(clone_total) * 1000:.0f}", "-", "-"),
        ("20 tests with a database each, runs after the first, s", f"{second_ours:.2f}",
         f"{second_theirs:.2f}", "-"),
        ("pytest-postgresql time / ours", f"{second_theirs / second_ours:.1f}x", "", ">= 3x"),
    ]  # fmt: skip
    print("\n## Per-worktree databases\n")
    venv = " --venv VENV" if args.venv != Path(sys.prefix) else ""
    print(f"`python bench/databases.py --runs {args.runs}{venv}`: medians; pytest-postgresql in")
    print("the same run, as the same user, with the same Python, pytest and PostgreSQL.\n")
    print("| measurement | ours | pytest-postgresql | target |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
