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

from docker import DockerClient

from tests.conftest import SERVICE_IMAGES, commit_all, git, init_repo, require, require_services

LOCAL_HINT = (
    "install the server binaries (apt-get install postgresql mariadb-server redis-server), "
    "or run ./scripts/services as root"
)


def require_local(*engines: str) -> None:
    """Skip (fail under WTG_REQUIRE_SERVICES=1, as in CI) when a server binary is missing."""
    from pytest_worktree_gates.databases import local
    from pytest_worktree_gates.errors import GatesError

    problems = []
    for engine in engines:
        try:
            local.check_binaries(engine)
        except GatesError as error:
            problems.append(str(error))
    require("; ".join(problems), LOCAL_HINT)


@contextmanager
def reachable_dir() -> Iterator[Path]:
    """A temp dir that the unprivileged server accounts can traverse."""
    folder = Path(tempfile.mkdtemp(prefix="wtg-db-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def local_project(name: str, config: str, *engines: str) -> Iterator[Path]:
    """A committed project ``name`` with ``config`` for the local servers of ``engines``
    (required, see :func:`require_local`), in a :func:`reachable_dir`; purged afterwards."""
    require_local(*engines)
    with reachable_dir() as folder:
        root = write_project(folder / name, config)
        try:
            yield root
        finally:
            purge(root)


def child_env() -> dict[str, str]:
    """This environment minus xdist's worker variables: a pytest started by a test that runs
    under ``-n`` would otherwise take itself for that worker and use the worker's database."""
    return {
        name: value for name, value in os.environ.items() if not name.startswith("PYTEST_XDIST_")
    }


def run_pytest(root: Path, *args: str) -> str:
    """Run pytest in ``root`` with :func:`child_env`'s environment; assert it passed; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=root,
        env=child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


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


def refused_up(root: Path, config: str) -> str:
    """``db up`` in a new project at ``root`` with ``config``: it must refuse (exit 2); stderr."""
    done = cli(write_project(root, config), "db", "up", check=False)
    assert done.returncode == 2, done.stderr
    return done.stderr


def unique_root(folder: Path, stem: str) -> Path:
    """A project path whose name is unique to ``folder``.

    Container names come from directory names: a unique one keeps concurrent runs of this suite
    (in other worktrees, say) from meeting on the same containers.
    """
    return folder / f"{stem}{folder.name[-8:].lower()}"


def purge(root: Path) -> None:
    """Stop and delete a project's servers, whatever state a test left them in."""
    cli(root, "db", "down", "--purge", check=False)


def add_worktree(root: Path, name: str) -> Path:
    path = root.parent / f"{root.name}-{name}"
    git(root, "worktree", "add", "-q", "-b", name, str(path))
    return path


# The docker backend's engine names for the test images that scripts/services builds.
IMAGES = {
    "postgres": SERVICE_IMAGES["postgres"],
    "mysql": SERVICE_IMAGES["mariadb"],
    "redis": SERVICE_IMAGES["redis"],
}


def require_docker(*engines: str) -> DockerClient:
    """A client of the Docker engine, which holds the engines' test images; else skip (fail
    under WTG_REQUIRE_SERVICES=1). The caller closes it."""
    return require_services(*(IMAGES[engine] for engine in engines))


def docker_config(*engines: str, extra: str = "") -> str:
    text = f'[tool.worktree-gates.databases]\nbackend = "docker"\n{extra}'
    for engine in engines:
        text += f'[tool.worktree-gates.databases.{engine}]\nimage = "{IMAGES[engine]}"\n'
    return text
