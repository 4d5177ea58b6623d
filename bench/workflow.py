"""Benchmarks of the worktree lifecycle: `merge` overhead, `new` with warm local databases, `list`.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/workflow.py [--rounds N]

It builds throwaway projects in a temp dir, prints a Markdown table (medians of N rounds) and
removes everything it started. `new` needs the PostgreSQL server binaries (the local backend).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
ENV = {**os.environ, **IDENTITY}
ENV.pop("COVERAGE_FILE", None)

PYPROJECT = """\
[tool.worktree-gates.coverage]
source = ["pkg"]
[tool.worktree-gates.checks]
preset = "none"
[tool.worktree-gates.variants.standard]
gates = ["final"]
approvals = 0
"""
DATABASES = """
[tool.worktree-gates.databases]
backend = "local"
[tool.worktree-gates.databases.postgres]
"""


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout


def wtg(cwd: Path, *args: str) -> str:
    return sh(cwd, sys.executable, "-m", "pytest_worktree_gates", *args)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def project(root: Path, extra: str = "") -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    sh(root, "git", "init", "-q", "-b", "main")
    (root / "pyproject.toml").write_text(PYPROJECT + extra)
    (root / "pkg" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "tests" / "test_pkg.py").write_text(
        "from pkg import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    (root / ".gitignore").write_text(".coverage*\n__pycache__/\n")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "project")
    return root


def commit(path: Path, name: str, text: str) -> None:
    (path / name).write_text(text)
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-qm", name)


def bench_merge(folder: Path, rounds: int) -> tuple[float, float, float]:
    """(median merge wall time, median final-gate time on a twin tree, overhead)."""
    root = project(folder / "merge")
    merges, gates = [], []
    for number in range(rounds):
        # Twins: the same change on two branches, so the gate costs the same on both; the twin
        # commits one more file so its tree (and ledger entry) differs from the merged one.
        wtg(root, "new", f"m{number}", "--no-db")
        wtg(root, "new", f"twin{number}", "--no-db")
        path, twin = root / ".worktrees" / f"m{number}", root / ".worktrees" / f"twin{number}"
        commit(path, f"m{number}.txt", "x\n")
        commit(twin, f"m{number}.txt", "x\n")
        commit(twin, "twin.txt", "y\n")
        commit(root, f"main{number}.txt", "z\n")  # main moved: merge makes a merge commit
        sh(twin, "git", "merge", "-q", "--no-edit", "main")
        gates.append(timed(lambda t=twin: sh(t, sys.executable, "-m", "pytest", "--gates=final")))
        merges.append(timed(lambda n=number: wtg(root, "merge", f"m{n}")))
        wtg(root, "cleanup", f"twin{number}", "--force")
    merge, gate = statistics.median(merges), statistics.median(gates)
    return merge, gate, merge - gate


def bench_new(folder: Path, rounds: int) -> float:
    root = project(folder / "new", DATABASES)
    try:
        wtg(root, "new", "warm")  # warms the local backend (initdb cache, binaries)
        times = [timed(lambda n=number: wtg(root, "new", f"n{n}")) for number in range(rounds)]
    finally:
        for name in ["warm", *(f"n{number}" for number in range(rounds))]:
            subprocess.run(
                [sys.executable, "-m", "pytest_worktree_gates", "cleanup", name, "--force"],
                cwd=root, env=ENV, capture_output=True, check=False,
            )  # fmt: skip
    return statistics.median(times)


def bench_list(folder: Path, rounds: int) -> float:
    root = project(folder / "list")
    for number in range(20):
        wtg(root, "new", f"l{number}", "--no-db")
    return statistics.median(timed(lambda: wtg(root, "list")) for _ in range(rounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    folder = Path(tempfile.mkdtemp(prefix="wtg-bench-"))
    folder.chmod(0o755)  # local database servers run as their own account and must traverse it
    try:
        merge, gate, overhead = bench_merge(folder, rounds)
        new = bench_new(folder, rounds)
        listing = bench_list(folder, rounds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"| measure (median of {rounds}) | seconds | target |")
    print("| --- | --- | --- |")
    print(f"| `merge` wall time (final gate + merge + cleanup) | {merge:.2f} | |")
    print(f"| the final gate alone (`pytest --gates=final`, twin tree) | {gate:.2f} | |")
    print(f"| `merge` overhead beyond the final gate | {overhead:.2f} | <= 1 |")
    print(f"| `new` without setup commands, local postgres warm | {new:.2f} | <= 1 |")
    print(f"| `list` with 20 worktrees | {listing:.2f} | <= 0.5 |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
