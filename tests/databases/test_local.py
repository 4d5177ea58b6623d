"""The local backend and `worktree-gates db` against real PostgreSQL, MariaDB and Redis."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git, listening
from tests.databases.helpers import (
    add_worktree,
    cli,
    local_project,
    purge,
    reachable_dir,
    refused_up,
    require_local,
)

ALL = """
[tool.worktree-gates.databases]
backend = "local"
[tool.worktree-gates.databases.postgres]
env = { DATABASE_URL = "{url}" }
[tool.worktree-gates.databases.mysql]
[tool.worktree-gates.databases.redis]
"""


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    with local_project("shop", ALL, "postgres", "mysql", "redis") as root:
        yield root


def test_up_status_url_down_and_purge(project: Path) -> None:
    up = cli(project, "db", "up")
    assert up.stdout.count("ready") == 3
    status = cli(project, "db", "status").stdout.splitlines()
    assert status[0].split() == ["engine", "backend", "port", "state", "age"]
    rows = {line.split()[0]: line.split() for line in status[1:]}
    assert all(rows[engine][3] == "running" for engine in ("postgres", "mysql", "redis"))
    secrets = project / ".git" / "worktree-gates"
    for engine in ("postgres", "mysql", "redis"):
        secret = (secrets / f"{engine}.password").read_text().strip()
        assert stat.S_IMODE((secrets / f"{engine}.password").stat().st_mode) == 0o600
        assert secret not in up.stdout + up.stderr + "\n".join(status)
        url = cli(project, "db", "url", engine).stdout.strip()
        assert secret in url and f"127.0.0.1:{rows[engine][2]}" in url
        # Only loopback: 0100007F is 127.0.0.1 in /proc/net/tcp's byte order.
        assert listening(int(rows[engine][2])) == ["0100007F"]
    # A second `up` adopts the running servers instead of restarting them.
    pidfile = secrets / "postgres" / "data" / "postmaster.pid"
    pid = pidfile.read_text().split()[0]
    cli(project, "db", "up")
    assert pidfile.read_text().split()[0] == pid

    cli(project, "db", "down")
    stopped = cli(project, "db", "status").stdout
    assert stopped.count("stopped") == 3
    cli(project, "db", "down", "--purge")
    purged = cli(project, "db", "status").stdout.splitlines()
    assert all(line.split()[2:4] == ["-", "absent"] for line in purged[1:])
    assert not (secrets / "postgres").exists()
    assert not (secrets / "postgres.password").exists()


def test_data_survives_down_and_up(project: Path) -> None:
    import psycopg

    cli(project, "db", "up")
    url = cli(project, "db", "url", "postgres").stdout.strip()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS kept (id int)")
        connection.execute("INSERT INTO kept VALUES (7)")
    cli(project, "db", "down")
    cli(project, "db", "up")
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT id FROM kept").fetchall() == [(7,)]


def test_bad_input_is_one_clear_line(project: Path) -> None:
    done = cli(project, "db", "url", "oracle", check=False)
    assert done.returncode == 2
    assert "database engine 'oracle' is not configured" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_exhausted_port_range_creates_nothing() -> None:
    require_local("redis")
    with reachable_dir() as folder, socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        stderr = refused_up(
            root := folder / "full",
            "[tool.worktree-gates.databases]\nbackend = 'local'\n"
            f"port-range = [{port}, {port}]\n[tool.worktree-gates.databases.redis]\n",
        )
        assert stderr.strip().splitlines() == [
            f"worktree-gates: error: port range {port}-{port} is exhausted: every port is leased"
            " or in use; widen [tool.worktree-gates.databases] port-range or run "
            "`worktree-gates db gc`"
        ]
        assert not (root / ".git" / "worktree-gates" / "redis").exists()


def test_gc_removes_servers_of_removed_worktrees_only(project: Path) -> None:
    feature = add_worktree(project, "gc-me")
    try:
        cli(feature, "db", "up")
        cli(project, "db", "up")
        feature_git = git(feature, "rev-parse", "--absolute-git-dir").strip()
        git(project, "worktree", "remove", "--force", str(feature))
        done = cli(project, "db", "gc")
        assert done.stdout.count("removed ") == 3
        assert feature_git in done.stdout
        assert cli(project, "db", "gc").stdout.strip() == "gc: 0 orphan(s) removed"
        # This worktree's servers were left alone.
        assert cli(project, "db", "status").stdout.count("running") == 3
        assert os.environ.get("DATABASE_URL") is None
    finally:  # the fixture purges the main worktree only: a failure must not leak these
        if feature.exists():
            purge(feature)
        cli(project, "db", "gc", check=False)


def test_the_initdb_cache_is_small_and_replaces_an_older_layout() -> None:
    import psycopg

    from pytest_worktree_gates.databases import local

    config = "[tool.worktree-gates.databases]\nbackend = 'local'\n"
    config += "[tool.worktree-gates.databases.postgres]\n"
    with local_project("small", config, "postgres") as root:
        cache = root / ".git" / "worktree-gates" / "cache"
        older = cache / f"postgres-{local._pg_version()}"  # 16 MB WAL segments
        older.mkdir(parents=True)
        cli(root, "db", "up")
        assert [path.name for path in cache.glob("postgres-*")] == [f"{older.name}-w1"]
        url = cli(root, "db", "url", "postgres").stdout.strip()
        with psycopg.connect(url) as connection:
            assert connection.execute("SHOW wal_segment_size").fetchone() == ("1MB",)
