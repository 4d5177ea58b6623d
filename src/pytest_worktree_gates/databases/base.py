"""What every backend shares: engine specs, the connection info a fixture yields, client
libraries imported on demand, and readiness by protocol.

Readiness is always a real round trip (``SELECT 1``, a MariaDB ping, Redis ``PING``) with the
worktree's password: an open port or a log line says a process exists, not that it accepts our
queries, and a server left by someone else on our port would pass such a check.
"""

from __future__ import annotations

import importlib
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pytest_worktree_gates.errors import GatesError

if TYPE_CHECKING:  # the config model is not imported on a warm session's path
    from pytest_worktree_gates.config import EngineConfig

HOST = "127.0.0.1"
ADMIN_DATABASE = {"postgres": "postgres", "mysql": "", "redis": "0"}


@dataclass(frozen=True)
class EngineSpec:
    """Fixed facts about one engine."""

    name: str
    label: str  # as users know it, for messages
    port: int  # the port inside a container
    user: str  # the account our fixtures connect as
    client: str  # the Python client module
    extra: str  # the package extra that installs it
    scheme: str  # of the URL


SPECS: Mapping[str, EngineSpec] = {
    "postgres": EngineSpec("postgres", "PostgreSQL", 5432, "postgres", "psycopg", "postgres",
                           "postgresql"),
    "mysql": EngineSpec("mysql", "MariaDB", 3306, "root", "pymysql", "mysql", "mysql"),
    "redis": EngineSpec("redis", "Redis", 6379, "", "redis", "redis", "redis"),
}  # fmt: skip


@dataclass(frozen=True)
class Server:
    """How to reach one database of one worktree's server; what the fixtures yield.

    The password is kept out of ``repr`` so that an assertion message or a log line that shows
    the object never shows the secret.
    """

    engine: str
    backend: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    templates: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def url(self) -> str:
        spec = SPECS[self.engine]
        secret = quote(self.password, safe="")
        credentials = f"{quote(self.user, safe='')}:{secret}@" if self.password else ""
        if self.engine == "redis" and self.password:
            credentials = f":{secret}@"
        return f"{spec.scheme}://{credentials}{self.host}:{self.port}/{self.database}"

    @property
    def env(self) -> dict[str, str]:
        """The configured ``env`` templates, rendered for this database."""
        values = {
            "url": self.url,
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "password": self.password,
            "database": self.database,
        }
        return {name: template.format(**values) for name, template in self.templates}

    def with_database(self, database: str) -> Server:
        return replace(self, database=database)


@dataclass(frozen=True)
class Status:
    """What a backend reports about one server."""

    state: str  # running | stopped | absent | unknown
    ident: str  # a pid or a container name
    detail: str = ""


@dataclass(frozen=True)
class Target:
    """One engine of one worktree: everything a backend needs to provision it."""

    engine: EngineSpec
    config: EngineConfig
    repo_name: str  # for container names
    worktree_name: str
    worktree: Path  # the absolute git dir: the worktree's identity
    common_dir: Path  # shared by the repo's worktrees (caches)
    port: int
    password: str = field(repr=False)
    network: str = "bridge"

    @property
    def home(self) -> Path:
        """This worktree's data for this engine (local backend) and its secret."""
        return self.worktree / "worktree-gates" / self.engine.name

    def admin(self, backend: str) -> Server:
        """The server's maintenance database: what readiness probes and DDL connect to."""
        return self.server(backend, ADMIN_DATABASE[self.engine.name])

    def _default_database(self) -> str:
        return "0" if self.engine.name == "redis" else self.config.database

    def server(self, backend: str, database: str | None = None) -> Server:
        return Server(
            engine=self.engine.name,
            backend=backend,
            host=HOST,
            port=self.port,
            user=self.engine.user,
            password=self.password,
            database=self._default_database() if database is None else database,
            templates=self.config.env,
        )


def secret_file(worktree: Path, engine: str) -> Path:
    return worktree / "worktree-gates" / f"{engine}.password"


def new_password() -> str:
    """Random per worktree; hex so that it needs no quoting in URLs, SQL or config files."""
    return secrets.token_hex(16)


def read_or_create_secret(path: Path) -> str:
    """The password kept in ``path`` (mode 0600), created on first use.

    The file is created with O_EXCL and mode 0600 in one step, so there is no moment when it
    exists with wider permissions, and two racing processes agree on one password.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the creator may not have written it yet
            text = path.read_text().strip()
            if text:
                return text
            time.sleep(0.01)
        raise GatesError(f"{path} is empty; delete it and run `worktree-gates db up`") from None
    password = new_password()
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def client(engine: str) -> Any:
    """The engine's Python client, or one error naming the extra that installs it."""
    spec = SPECS[engine]
    try:
        module: ModuleType = importlib.import_module(spec.client)
    except ImportError:
        raise GatesError(
            f"{spec.label} needs the Python package {spec.client!r}; install it with "
            f"`pip install 'pytest-worktree-gates[{spec.extra}]'`"
        ) from None
    return module


def connect(server: Server, timeout: float = 5.0, **options: Any) -> Any:
    """An open client connection to ``server`` (the caller closes it)."""
    module = client(server.engine)
    seconds = max(1, int(timeout))
    if server.engine in ("postgres", "mysql"):
        # The two DB-API clients differ only in how they name the database.
        database: dict[str, str | None]
        if server.engine == "postgres":
            database = {"dbname": server.database}
        else:
            database = {"database": server.database or None}
        return module.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
            connect_timeout=seconds,
            **database,
            **options,
        )
    return module.Redis(
        host=server.host,
        port=server.port,
        password=server.password or None,
        db=int(server.database or 0),
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        **options,
    )


# The connection of the last successful probe per server, handed to the next caller that
# wants one (see :func:`take_connection`): with SCRAM authentication every new PostgreSQL
# connection costs ~20 ms, and a warm fixture would otherwise pay twice (probe, then create).
_spare: dict[tuple[str, str, int, str, str], Any] = {}


def _key(server: Server) -> tuple[str, str, int, str, str]:
    return (server.engine, server.host, server.port, server.user, server.database)


def take_connection(server: Server) -> Any:
    """An autocommit connection to ``server``: the last probe's if unused, else a new one."""
    spare = _spare.pop(_key(server), None)
    if spare is not None:
        return spare
    if server.engine == "redis":
        return connect(server)
    return connect(server, autocommit=True)


def probe(server: Server) -> str | None:
    """None when the server answers the protocol's simplest request, else why not."""
    try:
        connection = take_connection(server) if server.engine != "redis" else connect(server)
    except GatesError:
        raise
    except Exception as error:  # every client has its own error tree; all mean "not ready"
        return _one_line(error)
    try:
        if server.engine == "postgres":
            connection.execute("SELECT 1").fetchone()
        elif server.engine == "mysql":
            connection.ping(reconnect=False)
        else:
            connection.ping()
    except Exception as error:
        connection.close()
        return _one_line(error)
    if server.engine == "redis":
        connection.close()
    else:
        old = _spare.pop(_key(server), None)
        if old is not None:  # pragma: no cover - only when two probes race in one process
            old.close()
        _spare[_key(server)] = connection
    return None


def _one_line(error: Exception) -> str:
    """Client errors span lines (psycopg adds hints); a message here is one line."""
    return " ".join(f"{type(error).__name__}: {error}".split())


def wait_ready(
    server: Server, timeout: float, alive: Callable[[], str | None] = lambda: None
) -> None:
    """Poll the protocol probe until it answers; ``alive`` reports a server that died."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        problem = probe(server)
        if problem is None:
            return
        death = alive()
        if death is not None:
            raise GatesError(death)
        if time.monotonic() > deadline:
            label = SPECS[server.engine].label
            raise GatesError(
                f"{label} on {server.host}:{server.port} did not become ready within "
                f"{timeout:.0f} s ({problem}); see `worktree-gates db status`"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
