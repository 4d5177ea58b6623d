"""The external backend: a server you run, given by URL; each worktree gets its own database.

Nothing is started or stopped here. A worktree's database is ``<database>_<worktree>`` inside
the given server (xdist workers and clones hang off that name), and Redis gets a DB index
picked from the worktree's identity. ``db down --purge`` and ``db gc`` drop them again.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pytest_worktree_gates.config import SECTION, env_override_name
from pytest_worktree_gates.databases import admin
from pytest_worktree_gates.databases.base import Server, Status, Target, probe
from pytest_worktree_gates.errors import ConfigError, GatesError

NAME = "external"
SCHEMES = {
    "postgres": ("postgresql", "postgres"),
    "mysql": ("mysql", "mariadb"),
    "redis": ("redis",),
}
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "redis": 6379}


def server_from_url(engine: str, url: str, templates: tuple[tuple[str, str], ...] = ()) -> Server:
    """The server's maintenance database from the configured URL, or one clear error."""
    key = f"{SECTION}.databases.{engine}.url"
    shown = re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)  # never echo a password
    if not url:
        variable = env_override_name(f"databases.{engine}.url")
        raise ConfigError(
            f"{key}: missing: the external backend needs the server's URL (set it there, "
            f"or in the environment as {variable})"
        )
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS[engine]
    except ValueError:
        raise ConfigError(f"{key}: malformed URL {shown!r}: the port is not a number") from None
    if parts.scheme not in SCHEMES[engine] or not parts.hostname:
        want = " or ".join(f"{scheme}://USER:PASSWORD@HOST:PORT/" for scheme in SCHEMES[engine])
        raise ConfigError(f"{key}: malformed URL {shown!r}; expected {want}")
    path = parts.path.lstrip("/")
    default = {"postgres": "postgres", "mysql": "", "redis": "0"}[engine]
    if engine == "redis" and path and not path.isdigit():
        raise ConfigError(f"{key}: malformed URL {shown!r}: a Redis DB index is a number")
    return Server(
        engine=engine,
        backend=NAME,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=path or default,
        templates=templates,
    )


def base_database(database: str, worktree_name: str) -> str:
    return admin.fit(f"{database}_{re.sub(r'[^A-Za-z0-9_]', '_', worktree_name)}")


def redis_index(worktree: Path) -> str:
    """A DB index per worktree, from its identity; index 0 stays the server's default."""
    return str(1 + int(hashlib.sha256(str(worktree).encode()).hexdigest(), 16) % 15)


def redis_worker_index(index: str, worker: str) -> str:
    """xdist worker ``gwN``'s own DB index: the ``N + 1``-th after the worktree's, among 1-15."""
    if not worker:
        return index
    number = int(worker.removeprefix("gw")) + 1
    if number >= 15:
        raise GatesError(f"xdist worker {worker} has no Redis DB index left; use -n 14 or less")
    return str(1 + (int(index) - 1 + number) % 15)


def up(target: Target) -> tuple[Server, str]:
    server = server_from_url(target.engine.name, target.config.url, target.config.env)
    problem = probe(server)
    if problem is not None:
        key = f"{SECTION}.databases.{target.engine.name}.url"
        variable = env_override_name(f"databases.{target.engine.name}.url")
        raise GatesError(
            f"cannot reach the external {target.engine.label} server at "
            f"{server.host}:{server.port} ({problem}); start it or fix {key} (or {variable})"
        )
    if target.engine.name == "redis":
        server = server.with_database(redis_index(target.worktree))
    return server, f"{server.host}:{server.port}"


def status(target: Target) -> Status:
    try:
        server = server_from_url(target.engine.name, target.config.url)
    except GatesError as error:
        return Status("unknown", "", str(error))
    state = "running" if probe(server) is None else "unreachable"
    return Status(state, f"{server.host}:{server.port}")


def down(target: Target, purge: bool) -> None:
    """Nothing to stop; ``purge`` drops this worktree's databases (or flushes its index)."""
    if not purge:
        return
    server = server_from_url(target.engine.name, target.config.url)
    if probe(server) is not None:
        return
    if target.engine.name == "redis":
        admin.drop(server, redis_index(target.worktree))
        return
    base = base_database(target.config.database, target.worktree_name)
    # Templates first: a detached refill of the clone pool (see templates.py) that is still
    # cloning one finishes before its template can go, and cannot make another clone after.
    for name in _own(server, base):
        if name.startswith(f"{base}_tpl_"):
            admin.drop(server, name)
    for name in _own(server, base):
        admin.drop(server, name)


def _own(server: Server, base: str) -> list[str]:
    """The worktree's databases: its own, its workers', its templates and clones."""
    return [
        name for name in admin.names(server, base) if name == base or name.startswith(f"{base}_")
    ]
