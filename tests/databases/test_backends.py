"""Choosing a backend (`auto`) and what happens when neither Docker nor binaries are there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases.helpers import cli, local_project, reachable_dir, write_project

REDIS_AUTO = "[tool.worktree-gates.databases]\n[tool.worktree-gates.databases.redis]\n"


def run(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_worktree_gates", *args],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def only_git(folder: Path) -> str:
    """A PATH with git and nothing else: no server binary can be found on it."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "git")
    return str(bin_dir)


def test_auto_without_docker_picks_local_and_says_so() -> None:
    with local_project("auto", REDIS_AUTO, "redis") as root:
        done = run(root, {"DOCKER_HOST": "unix:///nonexistent.sock"}, "db", "up")
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip() == (
            "worktree-gates: databases use the local backend (no Docker engine answers; "
            "server binaries are installed)"
        )
        # The choice sticks to the worktree: no second notice, the same server.
        again = run(root, {}, "db", "up")
        assert again.stderr == "" and "redis: local on 127.0.0.1" in again.stdout


def test_auto_decides_once_for_all_engines_of_a_worktree() -> None:
    config = REDIS_AUTO + "[tool.worktree-gates.databases.postgres]\n"
    with local_project("two", config, "redis", "postgres") as root:
        done = run(root, {"DOCKER_HOST": "unix:///nonexistent.sock"}, "db", "up")
        assert done.returncode == 0, done.stderr
        notices = [line for line in done.stderr.splitlines() if "backend" in line]
        assert notices == [
            "worktree-gates: databases use the local backend (no Docker engine answers; "
            "server binaries are installed)"
        ]
        assert "postgres: local on" in done.stdout and "redis: local on" in done.stdout


def test_auto_with_neither_says_how_to_get_either() -> None:
    with reachable_dir() as folder:
        root = write_project(folder / "none", REDIS_AUTO)
        env = {"DOCKER_HOST": "unix:///nonexistent.sock", "PATH": only_git(folder)}
        done = run(root, env, "db", "up")
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            "worktree-gates: error: no database backend is available: start a Docker engine "
            "(or set DOCKER_HOST), or install the server binaries (apt-get install postgresql "
            "mariadb-server redis-server), or set [tool.worktree-gates.databases] backend = "
            '"external"'
        ]
        assert not (root / ".git" / "worktree-gates" / "redis").exists()


def test_local_with_a_missing_binary_names_the_package() -> None:
    with reachable_dir() as folder:
        root = write_project(
            folder / "nobin",
            "[tool.worktree-gates.databases]\nbackend = 'local'\n" + REDIS_AUTO.split("\n", 1)[1],
        )
        done = run(root, {"PATH": only_git(folder)}, "db", "up")
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            "worktree-gates: error: `redis-server` was not found on PATH; the local backend "
            "needs redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew "
            'install redis), or use backend = "docker"'
        ]
        assert not (root / ".git" / "worktree-gates" / "redis" / "data").exists()


def test_no_engines_configured_says_what_to_add(tmp_path: Path) -> None:
    root = write_project(tmp_path / "empty", "")
    done = cli(root, "db", "status", check=False)
    assert done.returncode == 2
    assert "no database engine is configured" in done.stderr


@pytest.mark.parametrize("verb", ["up", "status"])
def test_db_outside_a_repo_is_one_clear_error(tmp_path: Path, verb: str) -> None:
    done = cli(tmp_path, "db", verb, check=False)
    assert done.returncode == 2
    assert "is not inside a git work tree" in done.stderr
