"""The hooks through the real pre-commit framework and prek, in fresh repos.

`try-repo` runs this checkout's .pre-commit-hooks.yaml as a user's config would; the format
and lint hooks bring their own environment, which the framework builds once per run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import commit_all, git
from tests.hookrepos import PY, hook_env, make_repo

PROJECT = Path(__file__).resolve().parent.parent
UGLY = "x=1\ny  =  2\n"
PRETTY = "x = 1\ny = 2\n"
TOOLS = ["pre-commit", "prek"]


def framework(tool: str, root: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = hook_env()
    # Both keep their environments here, never in the developer's cache.
    env["PRE_COMMIT_HOME"] = str(home / "pre-commit")
    env["PREK_HOME"] = str(home / "prek")
    program = shutil.which(tool, path=env["PATH"])
    assert program is not None, f"{tool} is part of the test extra"
    return subprocess.run(
        [program, *args], cwd=root, env=env, capture_output=True, text=True, check=False
    )


def _ugly_repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo")
    (root / "bad name.py").write_text(UGLY)
    git(root, "add", "bad name.py")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("tool", TOOLS)
def test_try_repo_runs_every_commit_hook_of_this_checkout(tool: str, tmp_path: Path) -> None:
    root = _ugly_repo(tmp_path)
    done = framework(tool, root, tmp_path, "try-repo", str(PROJECT), "--files", "bad name.py")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    for name in ("worktree-gates (every check of the stage)", "worktree-gates format"):
        assert name in out
    assert "files were modified by this hook" in out
    assert (root / "bad name.py").read_text() == PRETTY
    assert "worktree-gates types" not in out  # a pre-push hook


def _hook_source(tmp_path: Path) -> tuple[Path, str]:
    """A repo that publishes this checkout's manifest, pinned by commit as users pin a rev."""
    source = tmp_path / "source"
    source.mkdir()
    git(source, "init", "-q", "-b", "main")
    shutil.copy(PROJECT / ".pre-commit-hooks.yaml", source / ".pre-commit-hooks.yaml")
    return source, commit_all(source, "hooks")


@pytest.mark.slow
@pytest.mark.parametrize("tool", TOOLS)
def test_installed_framework_fixes_a_commit_then_lets_it_through(tool: str, tmp_path: Path) -> None:
    source, rev = _hook_source(tmp_path)
    root = _ugly_repo(tmp_path)
    (root / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {source}\n    rev: {rev}\n    hooks:\n      - id: worktree-gates\n"
        "      - id: worktree-gates-types\n      - id: worktree-gates-unit\n"
    )
    git(root, "add", ".pre-commit-config.yaml")
    installed = framework(tool, root, tmp_path, "install", "-t", "pre-commit", "-t", "pre-push")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    commit = ["git", "commit", "-q", "-m", "ugly"]
    env = hook_env()
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit")
    env["PREK_HOME"] = str(tmp_path / "prek")
    blocked = subprocess.run(commit, cwd=root, env=env, capture_output=True, text=True)
    assert blocked.returncode != 0
    assert "files were modified by this hook" in blocked.stdout + blocked.stderr
    assert (root / "bad name.py").read_text() == PRETTY
    git(root, "add", "bad name.py")
    done = subprocess.run(commit, cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(root, "show", "HEAD:bad name.py") == PRETTY
    # worktree-gates sees the framework's hook as foreign and leaves it alone.
    refused = subprocess.run(
        [PY, "-m", "pytest_worktree_gates", "hooks", "install"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "not ours" in refused.stderr


def test_the_projects_own_config_uses_the_published_hooks() -> None:
    import yaml

    published = {
        h["id"]: h for h in yaml.safe_load((PROJECT / ".pre-commit-hooks.yaml").read_text())
    }
    assert set(published) == {
        "worktree-gates",
        "worktree-gates-format",
        "worktree-gates-lint",
        "worktree-gates-types",
        "worktree-gates-unit",
    }
    assert {published[i]["language"] for i in ("worktree-gates-types", "worktree-gates-unit")} == {
        "system"
    }
    config = yaml.safe_load((PROJECT / ".pre-commit-config.yaml").read_text())
    (local,) = config["repos"]
    for hook in local["hooks"]:
        assert hook["entry"] == published[hook["id"]]["entry"]
        assert hook["stages"] == published[hook["id"]]["stages"]


@pytest.mark.parametrize("tool", TOOLS)
def test_the_projects_own_config_is_valid(tool: str, tmp_path: Path) -> None:
    done = framework(tool, PROJECT, tmp_path, "validate-config", ".pre-commit-config.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
