"""`worktree-gates init` in existing repos: adds, merges, installs, and is idempotent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from pytest_worktree_gates import config, scaffold, shims
from tests.conftest import git, init_repo
from tests.hookrepos import PY, hook_env

PYPROJECT = """\
[project]
name = "app"   # keep this comment
version = "1.0"

[tool.ruff]
line-length = 99
"""

EXISTING_HOOKS = """\
# my hooks
repos:
-   repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v4.6.0
    hooks:
    -   id: trailing-whitespace   # keep me
    -   id: end-of-file-fixer
"""


def init(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "pytest_worktree_gates", "init", *args],
        cwd=root,
        env=hook_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    files = [p for p in root.rglob("*") if p.is_file() and "objects" not in p.parts]
    return {str(p.relative_to(root)): p.read_bytes() for p in files if "logs" not in p.parts}


def test_init_adds_a_commented_section_merges_hooks_installs_and_is_idempotent(
    tmp_path: Path,
) -> None:
    root = init_repo(tmp_path)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / ".pre-commit-config.yaml").write_text(EXISTING_HOOKS)
    done = init(root)
    assert done.returncode == 0, done.stderr
    text = (root / "pyproject.toml").read_text()
    assert text.startswith(PYPROJECT + "\n[tool.worktree-gates]\n")
    assert config.load(root).checks["format"].run == "ruff format {files}"  # all defaults
    merged = (root / ".pre-commit-config.yaml").read_text()
    assert merged.startswith(EXISTING_HOOKS)  # comments and hooks kept as written
    repos = yaml.safe_load(merged)["repos"]
    ids = [hook["id"] for repo in repos for hook in repo["hooks"]]
    assert ids == ["trailing-whitespace", "end-of-file-fixer", *scaffold.HOOK_IDS]
    assert "    -   repo: local" not in merged and "\n- repo: local" in merged
    hooks = shims.inspect(root / ".git" / "hooks")
    assert {hook.state for hook in hooks} == {"ours"}

    before = snapshot(root)
    again = init(root)
    assert again.returncode == 0
    assert "pyproject.toml: already set up; unchanged" in again.stdout
    assert ".pre-commit-config.yaml: already set up; unchanged" in again.stdout
    assert "git hooks: already installed" in again.stdout
    assert snapshot(root) == before


def test_init_creates_what_is_missing(tmp_path: Path) -> None:
    root = init_repo(tmp_path)
    done = init(root, "--no-hooks")
    assert done.returncode == 0, done.stderr
    assert (root / "pyproject.toml").read_text() == scaffold.PYPROJECT_SECTION
    document = yaml.safe_load((root / ".pre-commit-config.yaml").read_text())
    assert [hook["id"] for hook in document["repos"][0]["hooks"]] == list(scaffold.HOOK_IDS)
    assert not (root / ".git" / "hooks" / "pre-commit").exists()
    for tool in ("pre-commit", "prek"):
        checked = subprocess.run(
            [tool, "validate-config", ".pre-commit-config.yaml"],
            cwd=root,
            env=hook_env(),
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_config_with_repos_before_other_keys_is_merged_whole(tmp_path: Path) -> None:
    text = "repos: []\ndefault_stages: [pre-commit]\n"
    merged = scaffold.pre_commit_config(text)
    assert merged is not None
    document = yaml.safe_load(merged)
    assert document["default_stages"] == ["pre-commit"]
    assert document["repos"][0]["repo"] == "local"


def test_a_foreign_hook_is_kept_and_named(tmp_path: Path) -> None:
    root = init_repo(tmp_path)
    (root / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    done = init(root)
    assert done.returncode == 0
    assert "kept the existing pre-commit hook (not ours)" in done.stdout
    assert "--force" in done.stdout
    assert (root / ".git" / "hooks" / "pre-commit").read_text() == "#!/bin/sh\nexit 0\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("pyproject.toml", "[project\n", "pyproject.toml: invalid TOML"),
        (".pre-commit-config.yaml", "repos: [\n", ".pre-commit-config.yaml: invalid YAML"),
        (".pre-commit-config.yaml", "- a\n- b\n", "no `repos:` list at the top level"),
    ],
)
def test_a_broken_file_is_one_error_and_nothing_changes(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    root = init_repo(tmp_path)
    (root / name).write_text(text)
    before = snapshot(root)
    done = init(root)
    assert done.returncode == 2
    assert message in done.stderr
    assert "nothing changed" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert snapshot(root) == before


def test_init_outside_a_repo_says_to_git_init(tmp_path: Path) -> None:
    done = init(tmp_path)
    assert done.returncode == 2
    assert "run `git init` first" in done.stderr
    assert not (tmp_path / "pyproject.toml").exists()


def test_init_in_a_linked_worktree_installs_into_the_shared_hooks(tmp_path: Path) -> None:
    (tmp_path / "main").mkdir()
    root = init_repo(tmp_path / "main")
    (root / "a").write_text("a")
    git(root, "add", "a")
    git(root, "commit", "-q", "-m", "a")
    git(root, "worktree", "add", "-q", str(tmp_path / "wt"))
    assert init(tmp_path / "wt").returncode == 0
    assert shims.classify(root / ".git" / "hooks" / "pre-push", "pre-push") == "ours"
