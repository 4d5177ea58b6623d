"""`worktree-gates hooks install|uninstall` and the shims, in real repos and worktrees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_worktree_gates import shims
from tests.conftest import git
from tests.hookrepos import PY, commit, committed, hook_env, install, make_repo

PROJECT = Path(__file__).resolve().parent.parent
FOREIGN = "#!/bin/sh\necho foreign hook >&2\nexit 0\n"


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "pytest_worktree_gates", *args],
        cwd=root,
        env=hook_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_shims_in_the_repo_are_what_install_writes() -> None:
    for stage in shims.STAGES:
        path = PROJECT / "hooks" / stage
        assert path.read_text() == shims.shim_text(stage)
        assert os.access(path, os.X_OK)


def test_install_writes_executable_shims_and_is_idempotent(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    first = cli(root, "hooks", "install")
    assert first.returncode == 0
    for stage in shims.STAGES:
        hook = root / ".git" / "hooks" / stage
        assert hook.read_text() == shims.shim_text(stage)
        assert os.access(hook, os.X_OK)
    again = cli(root, "hooks", "install")
    assert again.stdout.count("already installed") == 2


def test_a_foreign_hook_is_refused_then_backed_up_with_force_and_restored(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo")
    hook = root / ".git" / "hooks" / "pre-commit"
    hook.write_text(FOREIGN)
    refused = cli(root, "hooks", "install")
    assert refused.returncode == 2
    assert "a hook that is not ours is installed; nothing changed" in refused.stderr
    assert "--force" in refused.stderr
    assert hook.read_text() == FOREIGN
    assert not (root / ".git" / "hooks" / "pre-push").exists()

    forced = cli(root, "hooks", "install", "--force")
    assert forced.returncode == 0, forced.stderr
    assert hook.read_text() == shims.shim_text("pre-commit")
    backup = root / ".git" / "hooks" / "pre-commit.worktree-gates-backup"
    assert backup.read_text() == FOREIGN

    removed = cli(root, "hooks", "uninstall")
    assert removed.returncode == 0
    assert "restored the previous hook" in removed.stdout
    assert hook.read_text() == FOREIGN
    assert not backup.exists()
    assert not (root / ".git" / "hooks" / "pre-push").exists()


def test_a_stale_shim_is_replaced_without_force(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    hook = root / ".git" / "hooks" / "pre-commit"
    hook.write_text(shims.shim_text("pre-commit").replace("python3", "python2"))
    assert shims.classify(hook, "pre-commit") == "stale"
    assert cli(root, "hooks", "install").returncode == 0
    assert shims.classify(hook, "pre-commit") == "ours"


def test_install_honours_core_hooks_path(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    git(root, "config", "core.hooksPath", "githooks")
    assert cli(root, "hooks", "install").returncode == 0
    assert (root / "githooks" / "pre-commit").read_text() == shims.shim_text("pre-commit")
    assert not (root / ".git" / "hooks" / "pre-commit").exists()


def test_uninstall_leaves_a_foreign_hook_alone(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    (root / ".git" / "hooks" / "pre-push").write_text(FOREIGN)
    done = cli(root, "hooks", "uninstall")
    assert "is not ours; left alone" in done.stdout
    assert "pre-commit: not installed" in done.stdout
    assert (root / ".git" / "hooks" / "pre-push").read_text() == FOREIGN


def test_install_outside_a_repo_is_one_clear_error(tmp_path: Path) -> None:
    done = cli(tmp_path, "hooks", "install")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "not inside a git work tree" in done.stderr


def _fake_venv(root: Path, log: Path) -> None:
    """A .venv whose python records that it was chosen, then runs the real one."""
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "python"
    fake.write_text(f'#!/bin/sh\necho "{root.name}" >> "{log}"\nexec "{PY}" "$@"\n')
    fake.chmod(0o755)


def test_the_shim_finds_each_worktrees_own_venv_at_run_time(tmp_path: Path) -> None:
    log = tmp_path / "chosen.log"
    root = make_repo(tmp_path / "main")
    install(root)
    git(root, "worktree", "add", "-q", "-b", "feature/x", str(tmp_path / "x"))
    linked = tmp_path / "x"
    (linked / "pyproject.toml").write_text((root / "pyproject.toml").read_text())
    _fake_venv(linked, log)
    (linked / "f.py").write_text("f=1\n")
    git(linked, "add", "f.py")
    assert commit(linked).returncode == 0
    assert log.read_text().split() == ["x"]
    assert committed(linked, "f.py") == "f = 1\n"
    # Deleting that worktree does not break the hooks of the main checkout.
    git(root, "worktree", "remove", "--force", str(linked))
    (root / "g.py").write_text("g=1\n")
    git(root, "add", "g.py")
    done = commit(root)
    assert done.returncode == 0, done.stderr
    assert committed(root, "g.py") == "g = 1\n"


@pytest.mark.parametrize("stage", shims.STAGES)
def test_a_shim_without_the_package_says_how_to_get_it(tmp_path: Path, stage: str) -> None:
    root = make_repo(tmp_path / "repo")
    shim = tmp_path / stage
    shim.write_text(shims.shim_text(stage))
    shim.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A python3 without the package: the base interpreter this venv was made from.
    (bin_dir / "python3").symlink_to(Path(sys.base_prefix) / "bin" / "python3")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    done = subprocess.run([str(shim)], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "pip install -U pytest-worktree-gates" in done.stderr
