"""Reliability against real servers: concurrent worktrees, kill -9 during provisioning."""

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
    require_docker,
    require_local,
    unique_root,
    write_project,
)

PG_REDIS = """
[tool.worktree-gates.databases]
backend = "local"
[tool.worktree-gates.databases.postgres]
[tool.worktree-gates.databases.redis]
"""


@pytest.fixture(params=["local", "docker"])
def eight_worktrees(request: pytest.FixtureRequest) -> Iterator[list[Path]]:
    if request.param == "local":
        require_local("postgres", "redis")
        config = PG_REDIS
    else:
        require_docker("postgres", "redis").close()
        config = docker_config("postgres", "redis")
    with reachable_dir() as folder:
        root = write_project(unique_root(folder, "repo"), config)
        trees = [root] + [add_worktree(root, f"feature{n}") for n in range(1, 8)]
        try:
            yield trees
        finally:
            stops = [
                subprocess.Popen(
                    [sys.executable, "-m", "pytest_worktree_gates", "db", "down", "--purge"],
                    cwd=tree,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for tree in trees
            ]
            for stop in stops:
                stop.wait(timeout=120)


def test_eight_concurrent_worktrees_get_their_own_servers(eight_worktrees: list[Path]) -> None:
    import psycopg
    import redis

    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest_worktree_gates", "db", "up"],
            cwd=tree,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tree in eight_worktrees
    ]
    for start in starts:
        _, err = start.communicate(timeout=300)
        assert start.returncode == 0, err
    urls = [
        (
            cli(tree, "db", "url", "postgres").stdout.strip(),
            cli(tree, "db", "url", "redis").stdout.strip(),
        )
        for tree in eight_worktrees
    ]
    ports = {url.rsplit(":", 1)[1].split("/")[0] for pair in urls for url in pair}
    assert len(ports) == 16
    for n, (pg, rd) in enumerate(urls):
        with psycopg.connect(pg, autocommit=True) as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS mine (tree int)")
            connection.execute("INSERT INTO mine VALUES (%s)", (n,))
        redis.Redis.from_url(rd).set("tree", n)
    for n, (pg, rd) in enumerate(urls):
        with psycopg.connect(pg) as connection:
            assert connection.execute("SELECT tree FROM mine").fetchall() == [(n,)]
        assert redis.Redis.from_url(rd).get("tree") == str(n).encode()


MARIADB_AND_PG = """
[tool.worktree-gates.databases]
backend = "local"
[tool.worktree-gates.databases.mysql]
[tool.worktree-gates.databases.postgres]
"""


@pytest.mark.parametrize("delay", [0.4, 1.5])
def test_kill_9_during_provisioning_blocks_nothing(delay: float) -> None:
    require_local("postgres", "mysql")
    with reachable_dir() as folder:
        root = write_project(folder / "crash", MARIADB_AND_PG)
        feature = add_worktree(root, "doomed")
        try:
            victim = subprocess.Popen(
                [sys.executable, "-m", "pytest_worktree_gates", "db", "up"],
                cwd=feature,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(delay)  # mid-way: installing MariaDB's system tables, or starting it
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            again = cli(feature, "db", "up")
            assert again.stdout.count("ready") == 2
            status = cli(feature, "db", "status").stdout
            assert status.count("running") == 2
            assert cli(root, "db", "gc").stdout.strip() == "gc: 0 orphan(s) removed"
            # Removing the worktree makes its servers orphans, which gc then collects.
            git(root, "worktree", "remove", "--force", str(feature))
            assert "gc: 2 orphan(s) removed" in cli(root, "db", "gc").stdout
            assert cli(root, "db", "gc").stdout.strip() == "gc: 0 orphan(s) removed"
        finally:
            purge(root)
