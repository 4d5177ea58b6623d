"""Shared helpers: real git repos in tmp dirs, pytester projects, real database engines."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import coverage  # noqa: F401
import docker
import docker.errors
import pytest
import requests.exceptions

# pytester's in-process runs drop modules first imported inside them; coverage's C tracer
# cannot be imported twice in one process, so it is imported here, once, up front.

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never read the developer's git config or a surrounding repo's variables."""
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    # Hooks run real mypy in many tests: its preload servers go soon after, not in 10 minutes.
    monkeypatch.setenv("WORKTREE_GATES_PRELOAD_IDLE", "20")
    yield


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def init_repo(path: Path, branch: str = "main") -> Path:
    git(path, "init", "-q", "-b", branch)
    return path


def commit_all(path: Path, message: str = "change") -> str:
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return git(path, "rev-parse", "HEAD").strip()


# Real engines: scripts/services starts a Docker engine and builds these images offline.
SERVICE_IMAGES = {
    "postgres": "worktree-gates-test/postgres:15",
    "mariadb": "worktree-gates-test/mariadb:10.11",
    "redis": "worktree-gates-test/redis:7",
}
SERVICES_HINT = "run ./scripts/services as root (./scripts/test does it when run as root)"


def require(problem: str, hint: str) -> None:
    """Skip for ``problem`` (if any), except under WTG_REQUIRE_SERVICES=1 (CI), where it fails.

    The one gate of every test that needs an engine or a server binary: in CI no database test
    may pass by not running.
    """
    if not problem:
        return
    if os.environ.get("WTG_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{problem}, and WTG_REQUIRE_SERVICES=1: {hint}", pytrace=False)
    pytest.skip(f"{problem}: {hint}; set WTG_REQUIRE_SERVICES=1 to make this fail instead")


def require_services(*images: str) -> docker.DockerClient:
    """A client of an answering Docker engine that holds `images` (default: all test images)."""
    wanted = images or tuple(SERVICE_IMAGES.values())
    problem = ""
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        problem = f"no Docker engine answers ({exc})"
    else:
        missing = []
        for image in wanted:
            try:
                client.images.get(image)
            except docker.errors.ImageNotFound:
                missing.append(image)
        if missing:
            problem = f"missing test images {', '.join(missing)}"
    require(problem, SERVICES_HINT)
    return client


def listening(port: int) -> list[str]:
    """The local addresses listening on ``port`` (from the kernel's own tables)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found
