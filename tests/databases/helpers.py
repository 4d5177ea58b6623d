"""Helpers for tests against real database servers.

Servers run as an unprivileged account when the tests run as root, and that account must be
able to traverse every directory above a project's git dir; pytest's base temp dir is private
(0700), so projects that start servers live in a directory created here with traversal allowed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import commit_all, git, init_repo

BINARIES = {"postgres": "pg_ctl", "mysql": "mariadbd", "redis": "redis-server"}
HOW_TO_ENABLE = (
    "install the server binaries (apt-get install postgresql mariadb-server redis-server, or "
    "run scripts/services); set WTG_REQUIRE_SERVICES=1 to make a missing one fail instead"
)


def require_local(*engines: str) -> None:
    """Skip (fail under WTG_REQUIRE_SERVICES=1, as in CI) when a server binary is missing."""
    from pytest_worktree_gates.databases import localproc
    from pytest_worktree_gates.errors import GatesError

    for engine in engines:
        try:
            localproc.binary(engine, BINARIES[engine])
        except GatesError as error:
            message = f"{error}; {HOW_TO_ENABLE}"
            if os.environ.get("WTG_REQUIRE_SERVICES") == "1":
                pytest.fail(message, pytrace=False)
            pytest.skip(message)


@contextmanager
def reachable_dir() -> Iterator[Path]:
    """A temp dir that the unprivileged server accounts can traverse."""
    folder = Path(tempfile.mkdtemp(prefix="wtg-db-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_project(root: Path, databases: str) -> Path:
    """A committed git repo with ``databases`` as its [tool.worktree-gates.databases] config."""
    root.mkdir(parents=True, exist_ok=True)
    init_repo(root)
    (root / "pyproject.toml").write_text(databases)
    commit_all(root, "project")
    return root


def cli(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_worktree_gates", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"worktree-gates {' '.join(args)} failed:\n{done.stderr}")
    return done


def purge(root: Path) -> None:
    """Stop and delete a project's servers, whatever state a test left them in."""
    cli(root, "db", "down", "--purge", check=False)


def add_worktree(root: Path, name: str) -> Path:
    path = root.parent / f"{root.name}-{name}"
    git(root, "worktree", "add", "-q", "-b", name, str(path))
    return path


IMAGES = {
    "postgres": "worktree-gates-test/postgres:15",
    "mysql": "worktree-gates-test/mariadb:10.11",
    "redis": "worktree-gates-test/redis:7",
}


def require_docker(*engines: str) -> None:
    """Skip (fail under WTG_REQUIRE_SERVICES=1) without a Docker engine or the test images."""
    import docker

    how = (
        "start a Docker engine and build the test images with scripts/services; set "
        "WTG_REQUIRE_SERVICES=1 to make their absence fail instead"
    )
    problem = ""
    try:
        client = docker.from_env(timeout=5)
        client.ping()
        missing = [IMAGES[e] for e in engines if not client.images.list(name=IMAGES[e])]
        client.close()
        if missing:
            problem = f"test images missing: {', '.join(missing)}"
    except Exception as error:
        problem = f"no Docker engine answers ({type(error).__name__})"
    if problem:
        if os.environ.get("WTG_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{problem}; {how}", pytrace=False)
        pytest.skip(f"{problem}; {how}")


def docker_config(*engines: str, extra: str = "") -> str:
    text = f'[tool.worktree-gates.databases]\nbackend = "docker"\n{extra}'
    for engine in engines:
        text += f'[tool.worktree-gates.databases.{engine}]\nimage = "{IMAGES[engine]}"\n'
    return text
