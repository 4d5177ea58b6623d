"""The external backend, with a real server (started by the local backend) as the external one."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git
from tests.databases.helpers import (
    add_worktree,
    cli,
    purge,
    reachable_dir,
    refused_up,
    require_local,
    run_pytest,
    write_project,
)

APP_TEST = """
import psycopg
import redis


def test_own_database(worktree_postgres, worktree_redis, isolated_postgres):
    assert worktree_postgres.backend == "external"
    with psycopg.connect(worktree_postgres.url) as connection:
        name = connection.execute("SELECT current_database()").fetchone()[0]
    assert name == worktree_postgres.database
    assert isolated_postgres.database.startswith(worktree_postgres.database + "_iso_")
    redis.Redis.from_url(worktree_redis.url).set("mine", worktree_postgres.database)
    print("DATABASE=" + worktree_postgres.database, "INDEX=" + worktree_redis.database)
"""


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    """A PostgreSQL and a Redis that play the external servers."""
    require_local("postgres", "redis")
    with reachable_dir() as folder:
        host = write_project(
            folder / "host",
            "[tool.worktree-gates.databases]\nbackend = 'local'\n"
            "[tool.worktree-gates.databases.postgres]\n[tool.worktree-gates.databases.redis]\n",
        )
        try:
            cli(host, "db", "up")
            yield {e: cli(host, "db", "url", e).stdout.strip() for e in ("postgres", "redis")}
        finally:
            purge(host)


def external_config(urls: dict[str, str]) -> str:
    postgres = urls["postgres"].rsplit("/", 1)[0] + "/postgres"
    return (
        "[tool.worktree-gates.databases]\nbackend = 'external'\n"
        f"[tool.worktree-gates.databases.postgres]\nurl = '{postgres}'\n"
        f"[tool.worktree-gates.databases.redis]\nurl = '{urls['redis']}'\n"
    )


def run_tests(root: Path) -> str:
    (root / "test_app.py").write_text(APP_TEST)
    return run_pytest(root, "-s", "test_app.py")


def databases(url: str, prefix: str) -> list[str]:
    import psycopg

    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres") as connection:
        rows = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall()
    return sorted(row[0] for row in rows)


def test_a_database_per_worktree_dropped_at_purge_and_gc(servers: dict[str, str]) -> None:
    with reachable_dir() as folder:
        root = write_project(folder / "ext", external_config(servers))
        feature = add_worktree(root, "feat")
        main_out = run_tests(root)
        feature_out = run_tests(feature)
        assert "DATABASE=app_ext " in main_out
        assert "DATABASE=app_ext-feat " not in feature_out
        assert "DATABASE=app_ext_feat " in feature_out
        assert databases(servers["postgres"], "app_ext")[:2] == ["app_ext", "app_ext_feat"]
        status = cli(root, "db", "status").stdout
        assert status.count("external") == 2 and status.count("running") == 2
        git(root, "worktree", "remove", "--force", str(feature))
        assert "gc: 2 orphan(s) removed" in cli(root, "db", "gc").stdout
        assert not [name for name in databases(servers["postgres"], "app_ext_feat")]
        cli(root, "db", "down", "--purge")
        assert databases(servers["postgres"], "app_ext") == []


WORKERS_TEST = """
import os
import pathlib

import redis


def record(server):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    client = redis.Redis.from_url(server.url)
    client.set(f"test-of-{worker}", "1")
    with pathlib.Path("indices.log").open("a") as log:
        log.write(f"{worker} {server.database} {sorted(client.keys())}\\n")

""" + "".join(f"\ndef test_{n}(worktree_redis):\n    record(worktree_redis)\n" for n in range(4))


def test_xdist_workers_get_their_own_redis_index(servers: dict[str, str]) -> None:
    import redis

    from pytest_worktree_gates.databases.external import redis_index, redis_worker_index

    with reachable_dir() as folder:
        root = write_project(folder / "ext", external_config(servers))
        (root / "test_workers.py").write_text(WORKERS_TEST)
        own = redis_index(root / ".git")
        indices = {own, *(redis_worker_index(own, f"gw{n}") for n in range(2))}
        base = servers["redis"].rsplit("/", 1)[0]

        def flush() -> None:
            for index in indices:
                redis.Redis.from_url(f"{base}/{index}").flushdb()

        flush()  # another test of this module may have written to one of these indices
        try:
            run_pytest(root, "-n", "2")
            lines = (root / "indices.log").read_text().splitlines()
            seen = {line.split(" ", 2)[0]: line.split(" ", 2)[1:] for line in lines}
            assert set(seen) == {"gw0", "gw1"}
            # Apart from each other and from the worktree's own index.
            assert len({own, seen["gw0"][0], seen["gw1"][0]}) == 3
            for worker, (_, keys) in seen.items():  # no key written by the other worker
                assert keys == f"[b'test-of-{worker}']"
        finally:
            flush()


def external_url_config(url: str) -> str:
    return (
        "[tool.worktree-gates.databases]\nbackend = 'external'\n"
        f"[tool.worktree-gates.databases.postgres]\nurl = '{url}'\n"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://x:secret@127.0.0.1:1/db", "malformed URL 'http://x:***@127.0.0.1:1/db'"),
        (
            "postgresql://127.0.0.1:port/db",
            "malformed URL 'postgresql://127.0.0.1:port/db': the port is not a number",
        ),
        ("", "missing: the external backend needs the server's URL"),
    ],
)
def test_a_malformed_url_is_a_config_error(url: str, message: str) -> None:
    with reachable_dir() as folder:
        stderr = refused_up(folder / "bad", external_url_config(url))
        assert "tool.worktree-gates.databases.postgres.url: " + message in stderr
        assert "secret" not in stderr


def test_a_refused_connection_is_one_clear_error() -> None:
    require_local("postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once the socket closes
    with reachable_dir() as folder:
        stderr = refused_up(
            folder / "refused", external_url_config(f"postgresql://u:p@127.0.0.1:{port}/")
        )
        lines = stderr.strip().splitlines()
        assert len(lines) == 1
        assert f"cannot reach the external PostgreSQL server at 127.0.0.1:{port}" in lines[0]
        assert "databases.postgres.url" in lines[0]


def test_redis_worker_indices_are_distinct_and_bounded() -> None:
    from pytest_worktree_gates.databases.external import redis_worker_index
    from pytest_worktree_gates.errors import GatesError

    indices = [redis_worker_index("14", f"gw{n}") for n in range(14)]
    assert redis_worker_index("14", "") == "14"
    assert len({"14", *indices}) == 15 and set(indices) <= {str(i) for i in range(1, 16)}
    with pytest.raises(GatesError, match="gw14 has no Redis DB index left; use -n 14 or less"):
        redis_worker_index("14", "gw14")
