"""The docker backend against a real engine and the locally built test images."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git
from tests.databases.helpers import (
    add_worktree,
    cli,
    docker_config,
    purge,
    reachable_dir,
    refused_up,
    require_docker,
    unique_root,
    write_project,
)

ENGINES = ("postgres", "mysql", "redis")


@pytest.fixture
def docker_client() -> Iterator[object]:
    client = require_docker(*ENGINES)
    yield client
    client.close()


@pytest.fixture
def project(docker_client: object) -> Iterator[Path]:
    with reachable_dir() as folder:
        root = write_project(unique_root(folder, "dockshop"), docker_config(*ENGINES))
        try:
            yield root
        finally:
            purge(root)


def test_containers_named_labelled_loopback_and_reused(project: Path, docker_client) -> None:
    prefix = f"wtg-{project.name}-{project.name}-"
    up = cli(project, "db", "up")
    assert up.stdout.count("docker on 127.0.0.1:") == 3
    secret = (project / ".git" / "worktree-gates" / "postgres.password").read_text().strip()
    assert secret not in up.stdout + up.stderr
    containers = {}
    for engine in ENGINES:
        container = docker_client.containers.get(f"{prefix}{engine}")
        assert container.labels["io.worktree-gates.engine"] == engine
        assert container.labels["io.worktree-gates.repo"] == str(project / ".git")
        bindings = [b for ports in container.ports.values() for b in ports or []]
        assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
        assert secret not in str(container.labels)
        containers[engine] = container.id
        assert docker_client.volumes.get(f"{prefix}{engine}")
    # Reuse: a second `up` adopts the same containers.
    cli(project, "db", "up")
    for engine in ENGINES:
        assert docker_client.containers.get(f"{prefix}{engine}").id == (containers[engine])
    import psycopg

    url = cli(project, "db", "url", "postgres").stdout.strip()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE kept (id int)")
    # A changed config (here the network) recreates the container, keeping the volume's data.
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(
        text.replace('backend = "docker"\n', 'backend = "docker"\nnetwork = "host"\n')
    )
    cli(project, "db", "up")
    recreated = docker_client.containers.get(f"{prefix}postgres")
    assert recreated.id != containers["postgres"]
    assert recreated.attrs["HostConfig"]["NetworkMode"] == "host"
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT count(*) FROM kept").fetchone()[0] == 0
    status = cli(project, "db", "status").stdout
    assert status.count("running") == 3
    cli(project, "db", "down")
    assert cli(project, "db", "status").stdout.count("stopped") == 3
    cli(project, "db", "down", "--purge")
    names = [c.name for c in docker_client.containers.list(all=True)]
    assert not [name for name in names if name.startswith(prefix)]


def test_gc_removes_a_removed_worktrees_containers_and_no_other_repos(
    project: Path, docker_client
) -> None:
    with reachable_dir() as folder:
        other = write_project(folder / project.name, docker_config("redis"))  # same name
        try:
            cli(other, "db", "up")
            feature = add_worktree(project, "gone")
            cli(feature, "db", "up")
            git(project, "worktree", "remove", "--force", str(feature))
            done = cli(project, "db", "gc")
            assert done.stdout.strip().endswith("gc: 3 orphan(s) removed")
            names = [c.name for c in docker_client.containers.list(all=True)]
            assert not [name for name in names if f"-{project.name}-gone-" in name]
            # The other repo (even with the same directory name) keeps its container.
            assert cli(other, "db", "status").stdout.count("running") == 1
        finally:
            purge(other)


def test_an_image_that_cannot_be_pulled_is_one_clear_error(docker_client) -> None:
    with reachable_dir() as folder:
        stderr = refused_up(
            folder / "nopull",
            '[tool.worktree-gates.databases]\nbackend = "docker"\n'
            '[tool.worktree-gates.databases.redis]\nimage = "worktree-gates-test/absent:1"\n',
        )
        error = [line for line in stderr.splitlines() if "error:" in line]
        assert len(error) == 1
        assert "image 'worktree-gates-test/absent:1' is not available locally" in error[0]
        assert "cannot be pulled" in error[0] and "Traceback" not in stderr
        assert not docker_client.containers.list(all=True, filters={"name": "wtg-nopull-"})
        assert not docker_client.volumes.list(filters={"name": "wtg-nopull-"})


def test_no_docker_engine_names_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    with reachable_dir() as folder:
        monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        stderr = refused_up(root := folder / "noengine", docker_config("redis"))
        assert stderr.startswith(
            "worktree-gates: error: no Docker engine answers at unix:///nonexistent/docker.sock"
            " (DOCKER_HOST)"
        )
        assert 'backend = "local"' in stderr
        assert not (root / ".git" / "worktree-gates" / "redis").exists()


def test_kill_9_during_docker_provisioning_then_recovery(project: Path, docker_client) -> None:
    victim = subprocess.Popen(
        [sys.executable, "-m", "pytest_worktree_gates", "db", "up"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert cli(project, "db", "up").stdout.count("ready") == 3
    assert cli(project, "db", "gc").stdout.strip() == "gc: 0 orphan(s) removed"
