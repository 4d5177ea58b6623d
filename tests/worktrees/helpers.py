"""Tiny real projects for the worktree lifecycle: fast gates (no checks), real git, real pytest."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_worktree_gates import cli, state
from tests.conftest import commit_all, git, init_repo

PYPROJECT = """\
[tool.worktree-gates.coverage]
source = ["pkg"]

[tool.worktree-gates.checks]
preset = "none"

[tool.worktree-gates.variants.standard]
gates = {gates}
approvals = {approvals}
"""

PACKAGE = "import os\n\n\ndef add(a, b):\n    return a + b\n"
TESTS = "from pkg import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"


def make_project(root: Path, gates: str = '["final"]', approvals: int = 0) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    init_repo(root)
    (root / "pyproject.toml").write_text(PYPROJECT.format(gates=gates, approvals=approvals))
    (root / "pkg" / "__init__.py").write_text(PACKAGE)
    (root / "tests" / "test_pkg.py").write_text(TESTS)
    (root / ".gitignore").write_text(".coverage*\n__pycache__/\n")
    commit_all(root, "project")
    return root


class Runner:
    """``worktree-gates ARGS`` in-process (so coverage sees it) from a chosen directory."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]):
        self.monkeypatch = monkeypatch
        self.capfd = capfd

    def __call__(self, cwd: Path, *args: str) -> tuple[int, str]:
        self.capfd.readouterr()
        self.monkeypatch.chdir(cwd)
        try:
            code = cli.main(list(args))
        except SystemExit as exit:  # argparse refusing a command line
            code = int(exit.code or 0)
        out, err = self.capfd.readouterr()
        return code, out + err


def spawn(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_worktree_gates", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def worktree(root: Path, name: str) -> Path:
    return root / ".worktrees" / name


def new(wtg: Runner, project: Path, name: str) -> Path:
    code, out = wtg(project, "new", name, "--no-db")
    assert code == 0, out
    return worktree(project, name)


def change(path: Path, relative: str, text: str, message: str = "change") -> str:
    (path / relative).parent.mkdir(parents=True, exist_ok=True)
    (path / relative).write_text(text)
    return commit_all(path, message)


def head(root: Path, ref: str = "HEAD") -> str:
    return git(root, "rev-parse", ref).strip()


def db(root: Path) -> sqlite3.Connection:
    """A plain connection to the repo's state database (tests close it themselves)."""
    with state.connect(root / ".git" / "worktree-gates"):
        pass
    return sqlite3.connect(root / ".git" / "worktree-gates" / "state.db")


def final_passed(root: Path, tree: str) -> bool:
    connection = db(root)
    try:
        row = connection.execute(
            "SELECT 1 FROM ledger WHERE gate = 'final' AND tree = ? AND passed = 1", (tree,)
        ).fetchone()
    finally:
        connection.close()
    return row is not None


def refs(root: Path) -> str:
    """Every ref with its commit: the repo's state that bad input must not change."""
    return git(root, "for-each-ref", "--format=%(refname) %(objectname)")


def snapshot(root: Path) -> tuple[str, str, list[str]]:
    rows = db(root)
    try:
        names = [row[0] for row in rows.execute("SELECT name FROM worktrees ORDER BY name")]
    finally:
        rows.close()
    return refs(root), git(root, "worktree", "list", "--porcelain"), names


def merged_by_us(project: Path) -> list[str]:
    """Every commit that `merge` made main point to (main's reflog), newest first."""
    lines = git(project, "reflog", "--format=%H %gs", "refs/heads/main").splitlines()
    return [line.split()[0] for line in lines if " worktree-gates merge " in f" {line}"]


def main_history_passed_final(project: Path) -> list[str]:
    """The commits `merge` moved main to whose tree is not recorded as passing final."""
    commits = merged_by_us(project)
    assert commits, "merge never moved main"
    return [c for c in commits if not final_passed(project, head(project, f"{c}^{{tree}}"))]
