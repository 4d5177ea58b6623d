"""The fixtures and env export, through pytester runs of a real project on real servers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import commit_all, init_repo
from tests.databases.helpers import purge, reachable_dir, require_local

SETUP = (
    "import os, psycopg; psycopg.connect(os.environ['WORKTREE_GATES_DATABASE_URL'], "
    "autocommit=True).execute('CREATE TABLE items (name text)')"
)

CONFIG = """
[tool.worktree-gates.databases]
backend = "local"
[tool.worktree-gates.databases.postgres]
database = "shop"
setup = [{setup}]
fingerprint = ["schema/*.sql"]
env = {{ DATABASE_URL = "{{url}}", DB_PORT = "{{port}}" }}
[tool.worktree-gates.databases.mysql]
[tool.worktree-gates.databases.redis]
env = {{ REDIS_URL = "{{url}}" }}
"""

CONFTEST = """
import os

# Read at import time, as pydantic-settings or Django would.
SETTINGS_URL = os.environ["DATABASE_URL"]
"""

TESTS = """
import os

import psycopg
import pymysql
import redis

from conftest import SETTINGS_URL


def test_session_postgres_is_what_the_app_saw(worktree_postgres):
    assert worktree_postgres.url == SETTINGS_URL
    assert worktree_postgres.env["DB_PORT"] == str(worktree_postgres.port)
    assert worktree_postgres.host == "127.0.0.1"
    assert worktree_postgres.password not in repr(worktree_postgres)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    assert worktree_postgres.database == (f"shop_{worker}" if worker else "shop")
    with psycopg.connect(worktree_postgres.url) as connection:
        assert connection.execute("SELECT current_database()").fetchone()[0] == (
            worktree_postgres.database
        )


def test_isolated_first(isolated_postgres):
    with psycopg.connect(isolated_postgres.url, autocommit=True) as connection:
        connection.execute("INSERT INTO items VALUES ('first')")
        assert connection.execute("SELECT count(*) FROM items").fetchone()[0] == 1


def test_isolated_second(isolated_postgres):
    with psycopg.connect(isolated_postgres.url) as connection:
        assert connection.execute("SELECT count(*) FROM items").fetchone()[0] == 0


def test_mysql(worktree_mysql):
    connection = pymysql.connect(
        host=worktree_mysql.host, port=worktree_mysql.port, user=worktree_mysql.user,
        password=worktree_mysql.password, database=worktree_mysql.database,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT DATABASE()")
        assert cursor.fetchone()[0] == worktree_mysql.database
    connection.close()


def test_redis(worktree_redis):
    client = redis.Redis.from_url(worktree_redis.url)
    assert worktree_redis.url == os.environ["REDIS_URL"]
    client.set("key", worktree_redis.database)
    assert client.get("key") == worktree_redis.database.encode()
"""


def toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A committed app in a directory the server accounts can reach; pytester runs in it.

    pytest keeps its own base temp dir private (and restores that mode when another run
    starts), so the app cannot live under ``pytester.path``.
    """
    require_local("postgres", "mysql", "redis")
    with reachable_dir() as folder:
        root = folder / "app"
        root.mkdir()
        config = CONFIG.format(setup=toml_string(f"{sys.executable} -c {SETUP!r}"))
        (root / "pyproject.toml").write_text(config)
        (root / "conftest.py").write_text(CONFTEST)
        (root / "test_app.py").write_text(TESTS)
        (root / "schema").mkdir()
        (root / "schema" / "items.sql").write_text("-- v1\n")
        init_repo(root)
        commit_all(root, "app")
        monkeypatch.chdir(root)
        try:
            yield root
        finally:
            purge(root)


def templates(root: Path) -> list[str]:
    import psycopg

    from tests.databases.helpers import cli

    url = cli(root, "db", "url", "postgres").stdout.strip().rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT datname FROM pg_database WHERE datistemplate AND datname LIKE 'shop%'"
        ).fetchall()
    return [row[0] for row in rows]


def test_fixtures_env_export_and_templates(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    first = templates(project)
    assert len(first) == 1
    # Under xdist every worker has its own database (and Redis index) on the same servers.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=5)
    assert templates(project) == first  # unchanged fingerprint: the template is reused
    (project / "schema" / "items.sql").write_text("-- v2\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=5)
    second = templates(project)
    assert len(second) == 1 and second != first  # rebuilt, and the stale one dropped


def test_a_failing_setup_shows_its_output_and_keeps_no_template(
    pytester: pytest.Pytester, project: Path
) -> None:
    broken = f"{sys.executable} -c \"import sys; print('migration 42 broke'); sys.exit(3)\""
    (project / "pyproject.toml").write_text(CONFIG.format(setup=toml_string(broken)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "isolated")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*setup command*failed (exit 3)*", "*migration 42 broke*"])
    assert templates(project) == []


def test_bad_env_config_stops_pytest_before_conftests(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        "[tool.worktree-gates.databases.postgres]\nenv = { URL = '{uri}' }\n"
    )
    init_repo(pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*databases.postgres.env.URL: unknown placeholder {uri}*"])


@pytest.mark.parametrize(
    ("pyproject", "engines"),
    [
        ("[project]\nname = 'x'\n", []),
        # The words appear, but no databases table configures env: no config load, no git.
        ("[project]\ndependencies = ['databases']\n[tool.ruff]\nexclude = ['.venv']\n", []),
        ("[tool.worktree-gates.databases]\nbackend = 'docker'\n[tool.x]\nenv = 1\n", []),
        ("[tool.worktree-gates.databases.redis]\nenv = { URL = '{url}' }\n", ["redis"]),
        (
            "[tool.worktree-gates.databases.redis]\nenv = { URL = '{url}' }\n"
            "[tool.worktree-gates.databases.postgres]\nenv = {}\n"  # exports nothing
            "[tool.worktree-gates.databases.mysql]\nenv = { M = '{url}' }\n",
            ["mysql", "redis"],
        ),
        ("[tool.worktree-gates]\ndatabases = 'env'\n", None),  # wrong type: the load reports it
        ("databases env = [", None),  # broken TOML: the load reports it
    ],
)
def test_env_engines_looks_for_env_tables(
    tmp_path: Path, pyproject: str, engines: list[str] | None
) -> None:
    from pytest_worktree_gates.databases.fixtures import env_engines

    (tmp_path / "pyproject.toml").write_text(pyproject)
    assert env_engines(tmp_path) == engines
