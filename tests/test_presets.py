"""Presets: "ruff" by default, "classic", "none", each overridable step by step, used by hooks."""

from __future__ import annotations

import sys
from pathlib import Path

from pytest_worktree_gates import config
from pytest_worktree_gates.config import Check
from tests.conftest import git
from tests.hookrepos import hook, make_repo, staged

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def checks(toml: str) -> dict[str, Check]:
    return dict(config.parse(tomllib.loads(toml), None, Path(".")).checks)


def test_ruff_is_the_default_preset() -> None:
    assert checks("") == {
        "format": Check("format", "ruff format {files}", fixes=True),
        "lint": Check("lint", "ruff check {files}"),
        "types": Check("types", "mypy {files}", stage="pre-push"),
    }


def test_classic_is_black_isort_ruff_and_mypy() -> None:
    found = checks('[tool.worktree-gates.checks]\npreset = "classic"\n')
    assert [(c.name, c.run.split()[0], c.fixes) for c in found.values()] == [
        ("format", "black", True),
        ("imports", "isort", True),
        ("lint", "ruff", False),
        ("types", "mypy", False),
    ]


def test_a_preset_step_is_overridden_key_by_key() -> None:
    found = checks(
        '[tool.worktree-gates.checks]\npreset = "classic"\n'
        '[tool.worktree-gates.checks.types]\nstage = "pre-commit"\n'
        '[tool.worktree-gates.checks.format]\nrun = "ruff format {files}"\n'
        '[tool.worktree-gates.checks.spell]\nrun = "codespell {files}"\nfiles = ["*.md"]\n'
    )
    assert found["types"] == Check("types", "mypy {files}", stage="pre-commit")
    assert found["format"] == Check("format", "ruff format {files}", fixes=True)  # still a fixer
    assert found["imports"].run == "isort {files}"  # untouched steps stay as the preset has them
    assert found["spell"] == Check("spell", "codespell {files}", files=("*.md",))
    assert set(checks('[tool.worktree-gates.checks]\npreset = "none"\n')) == set()


def test_hooks_run_the_preset_steps_fixers_first(tmp_path: Path) -> None:
    # classic, with isort's step swapped for ruff's import sorting so no extra tool is needed
    toml = (
        '[tool.worktree-gates.checks]\npreset = "classic"\n'
        '[tool.worktree-gates.checks.format]\nrun = "ruff format {files}"\n'
        '[tool.worktree-gates.checks.imports]\nrun = "ruff check --select I --fix {files}"\n'
    )
    root = make_repo(tmp_path / "repo", toml)
    (root / "m.py").write_text("import sys\nimport os\nprint(os, sys)\n")
    git(root, "add", "m.py")
    done = hook(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert staged(root, "m.py") == "import os\nimport sys\n\nprint(os, sys)\n"
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if not line.startswith(" ")] == [
        "format",
        "imports",
        "lint",
    ]


def test_a_preset_tool_that_is_missing_is_named_with_its_install(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", '[tool.worktree-gates.checks]\npreset = "classic"\n')
    (root / "m.py").write_text("x = 1\n")
    git(root, "add", "m.py")
    done = hook(root, "pre-commit", "--check", "imports")
    assert done.returncode == 1
    assert "check 'imports': command 'isort' not found" in done.stderr
    assert "pip install isort" in done.stderr
