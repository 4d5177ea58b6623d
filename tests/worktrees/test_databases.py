"""`new` provisions the worktree's databases with the local backend; `cleanup` removes them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import listening
from tests.databases.helpers import cli, purge, reachable_dir, require_local, write_project

DATABASES = """\
[tool.worktree-gates.databases]
backend = "local"
[tool.worktree-gates.databases.redis]
[tool.worktree-gates.databases.postgres]
env = { DATABASE_URL = "{url}" }
"""
REDIS_ONLY = DATABASES.split("[tool.worktree-gates.databases.postgres]")[0]


def env_file(path: Path) -> dict[str, str]:
    lines = (path / ".env.worktree").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_new_provisions_databases_and_cleanup_removes_them() -> None:
    require_local("redis", "postgres")
    with reachable_dir() as folder:
        root = write_project(folder / "shop", DATABASES)
        try:
            done = cli(root, "new", "orders")
            path = root / ".worktrees" / "orders"
            values = env_file(path)
            assert (path / ".env.worktree").stat().st_mode & 0o777 == 0o600
            redis_port, pg_port = int(values["WTG_REDIS_PORT"]), int(values["WTG_POSTGRES_PORT"])
            assert values["WTG_POSTGRES_URL"].startswith("postgresql://")
            assert values["DATABASE_URL"] == values["WTG_POSTGRES_URL"]
            assert listening(redis_port) and listening(pg_port), done.stdout
            rows = json.loads(cli(root, "list", "--json").stdout)
            assert sorted(rows[0]["databases"]) == [
                f"postgres:{pg_port} (local)",
                f"redis:{redis_port} (local)",
            ]

            cleaned = cli(root, "cleanup", "orders").stdout
            assert "removed databases and ports: postgres" in cleaned
            assert not listening(redis_port) and not listening(pg_port)
            assert not path.exists()
            assert json.loads(cli(root, "list", "--json").stdout) == []
        finally:
            purge(root)


def test_cleanup_after_the_directory_was_deleted_by_hand_stops_the_servers() -> None:
    require_local("redis")
    with reachable_dir() as folder:
        root = write_project(folder / "shop", REDIS_ONLY)
        try:
            cli(root, "new", "lost")
            path = root / ".worktrees" / "lost"
            port = int(env_file(path)["WTG_REDIS_PORT"])
            shutil.rmtree(path)
            assert listening(port)
            assert "missing" in cli(root, "list").stdout
            cleaned = cli(root, "cleanup", "lost").stdout
            assert "was already gone" in cleaned
            assert not listening(port)
        finally:
            purge(root)


@pytest.mark.parametrize("flag", ["--no-db"])
def test_no_db_leases_ports_without_starting_servers(flag: str) -> None:
    require_local("redis")
    with reachable_dir() as folder:
        root = write_project(folder / "shop", DATABASES)
        cli(root, "new", "quiet", flag)
        values = env_file(root / ".worktrees" / "quiet")
        assert set(values) == {"WTG_POSTGRES_PORT", "WTG_REDIS_PORT"}
        assert not listening(int(values["WTG_REDIS_PORT"]))
        cli(root, "cleanup", "quiet")


def test_db_gc_collects_the_servers_of_a_worktree_deleted_by_hand() -> None:
    require_local("redis")
    with reachable_dir() as folder:
        root = write_project(folder / "shop", REDIS_ONLY)
        try:
            cli(root, "new", "lost")
            port = int(env_file(root / ".worktrees" / "lost")["WTG_REDIS_PORT"])
            shutil.rmtree(root / ".worktrees" / "lost")
            assert "1 orphan(s) removed" in cli(root, "db", "gc").stdout
            assert not listening(port)
            assert "was already gone" in cli(root, "cleanup", "lost").stdout
            assert json.loads(cli(root, "list", "--json").stdout) == []
        finally:
            purge(root)
