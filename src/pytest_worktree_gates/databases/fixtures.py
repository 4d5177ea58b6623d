"""The database fixtures, registered by the plugin.

Importing this module costs nothing beyond pytest itself: a project without databases pays
nothing, and the servers are only looked up when a test asks for a fixture (or when the
configuration exports env variables, see :func:`export_env`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_worktree_gates.databases.base import Server
    from pytest_worktree_gates.databases.provider import Provider

provider_key: pytest.StashKey[Provider] = pytest.StashKey()


def provider(config: pytest.Config) -> Provider:
    """The process's one provider, shared by env export and the fixtures."""
    found = config.stash.get(provider_key, None)
    if found is None:
        from pytest_worktree_gates.databases.provider import Provider

        found = config.stash[provider_key] = Provider(Path(config.rootpath))
    return found


def _session(request: pytest.FixtureRequest, engine: str) -> Server:
    from pytest_worktree_gates.errors import GatesError

    try:
        return provider(request.config).session(engine)
    except GatesError as error:
        problem = str(error)
    # Outside the except block, so the report shows our one line, not a chained traceback.
    pytest.fail(f"worktree-gates: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def worktree_postgres(request: pytest.FixtureRequest) -> Server:
    """This worktree's PostgreSQL; under xdist, the worker's own database on it."""
    return _session(request, "postgres")


@pytest.fixture(scope="session")
def worktree_mysql(request: pytest.FixtureRequest) -> Server:
    """This worktree's MariaDB/MySQL; under xdist, the worker's own database on it."""
    return _session(request, "mysql")


@pytest.fixture(scope="session")
def worktree_redis(request: pytest.FixtureRequest) -> Server:
    """This worktree's Redis; under xdist, the worker's own DB index."""
    return _session(request, "redis")


@pytest.fixture
def isolated_postgres(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A fresh PostgreSQL database for one test, cloned from the prepared template."""
    from pytest_worktree_gates.errors import GatesError

    source = provider(request.config)
    try:
        server = source.isolated()
    except GatesError as error:
        problem = str(error)
    else:
        yield server
        source.release(server)
        return
    pytest.fail(f"worktree-gates: {problem}", pytrace=False)


def env_engines(root: Path) -> list[str] | None:
    """A cheap look before loading the config: the engines whose table configures ``env``.

    A substring test rules out most projects; the rest ("databases" in a dependency list,
    "env" in ".venv") are parsed. None when the file is broken or has a wrong type: the real
    load says what is wrong.
    """
    from pytest_worktree_gates.errors import ConfigError
    from pytest_worktree_gates.pyproject import find_pyproject, read_toml

    path = find_pyproject(root.resolve())
    if path is None:
        return []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    if "databases" not in text or "env" not in text:
        return []
    try:
        tables = read_toml(path).get("tool", {}).get("worktree-gates", {}).get("databases", {})
    except (ConfigError, AttributeError):
        return None
    if not isinstance(tables, dict):
        return None
    # An empty table exports nothing; any other value is exported, or refused by the load.
    return sorted(
        name
        for name, table in tables.items()
        if isinstance(table, dict) and "env" in table and table["env"] != {}
    )


def export_env(config: pytest.Config) -> None:
    """Provision the engines that configure ``env`` and export their variables.

    Runs in ``pytest_load_initial_conftests``, before any conftest or app module is imported,
    so settings read at import time see the worktree's own databases.
    """
    engines = env_engines(Path(config.rootpath))
    if engines == []:
        return
    from pytest_worktree_gates.errors import GatesError

    try:
        # The raw table's engines let a warm session skip the config load (see provider.py).
        values = provider(config).exported(engines)
    except GatesError as error:
        raise pytest.UsageError(f"worktree-gates: {error}") from None
    os.environ.update(values)


def pytest_unconfigure(config: pytest.Config) -> None:
    found = config.stash.get(provider_key, None)
    if found is not None:
        found.close()
