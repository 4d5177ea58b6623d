"""What a pytest process needs from the databases: its servers, its worker's databases, clones.

One :class:`Provider` per pytest process (xdist controller or worker), created on first use and
shared by env export and the fixtures, so a server is looked up once per process. A warm
session takes the short way (:mod:`warm`): the config model, git and the state database are
imported and consulted only when it does not apply, or for clones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_worktree_gates.databases import admin, warm
from pytest_worktree_gates.databases.base import Server, take_connection
from pytest_worktree_gates.errors import GatesError

if TYPE_CHECKING:
    from pytest_worktree_gates.databases import service, templates


def worker_id() -> str:
    """``gw0``, ``gw1``, ... under xdist, else empty."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def worker_database(engine: str, database: str, worker: str) -> str:
    """Each xdist worker gets its own database (its own DB index for Redis)."""
    if engine == "redis":
        if not worker:
            return "0"
        index = int(worker.removeprefix("gw")) + 1
        if index >= 16:
            raise GatesError(f"xdist worker {worker} has no Redis DB index left; use -n 15 or less")
        return str(index)
    return admin.fit(f"{database}_{worker}") if worker else database


@dataclass
class Provider:
    root: Path
    _place: service.Place | None = None
    _servers: dict[str, Server] = field(default_factory=dict)
    _cloners: dict[str, templates.Cloner] = field(default_factory=dict)
    _bases: dict[str, str] = field(default_factory=dict)  # from the warm path
    _sessions: dict[str, Server] = field(default_factory=dict)
    _broken: str = ""  # a failed template setup: not re-run for every test of the session

    @property
    def place(self) -> service.Place:
        if self._place is None:
            from pytest_worktree_gates import config as config_module
            from pytest_worktree_gates import git
            from pytest_worktree_gates.databases import service
            from pytest_worktree_gates.errors import GitError

            repo = git.find_repo(self.root)
            if repo is None:
                raise GitError(f"{self.root} is not inside a git work tree; databases need one")
            self._place = service.Place(config_module.load(self.root), repo)
        return self._place

    def admin(self, engine: str) -> Server:
        """The engine's server for this worktree (started once, under its lock)."""
        if engine not in self._servers:
            from pytest_worktree_gates.databases import service

            self._servers[engine] = service.ensure(self.place, engine)
        return self._servers[engine]

    def session(self, engine: str) -> Server:
        """This worker's own database on the worktree's server, created if needed.

        Looked up once per process: env export and the session fixture both ask for it, and
        every lookup after the probe's costs a login.
        """
        if engine not in self._sessions:
            self._sessions[engine] = self._session(engine)
        return self._sessions[engine]

    def _session(self, engine: str) -> Server:
        if engine not in self._servers and self._place is None:
            # Not when a caller handed in its config (the CLI): it has paid for it already.
            found = warm.recall(self.root, engine)
            if found is not None:
                self._servers[engine], self._bases[engine] = found
        server = self.admin(engine)
        if engine == "redis" and server.backend == "external":
            from pytest_worktree_gates.databases.external import redis_worker_index

            return server.with_database(redis_worker_index(server.database, worker_id()))
        name = worker_database(engine, self.base(engine), worker_id())
        admin.create(server, name)
        own = server.with_database(name)
        return own

    def base(self, engine: str) -> str:
        if engine in self._bases:
            return self._bases[engine]
        from pytest_worktree_gates.databases import service

        config = self.place.config.databases.engine(engine)
        return service.base_database(self.place, config, self.admin(engine).backend)

    def exported(self, engines: list[str] | None = None) -> dict[str, str]:
        """The configured ``env`` of every engine, rendered for this worker's databases.

        ``engines``: those whose table has ``env``, as read from pyproject.toml without the
        config model; an engine the warm path cannot serve loads the config after all.
        """
        if engines is None:
            engines = [engine.name for engine in self.place.config.databases.engines if engine.env]
        values: dict[str, str] = {}
        for name in engines:
            values.update(self.session(name).env)
        return values

    def template(self, connection: Any) -> tuple[str, str]:
        """The prepared template of the postgres engine and its fingerprint, built once each.

        ``connection`` is the server's admin connection that the session's clones go through.
        """
        from pytest_worktree_gates.databases import templates
        from pytest_worktree_gates.databases.filelock import FileLock

        engine = self.place.config.databases.engine("postgres")
        version = str(connection.execute("SHOW server_version").fetchone()[0])
        key = templates.fingerprint(
            self.place.config.root, engine.fingerprint, engine.setup, version
        )
        base = self.base("postgres")
        name = templates.template_name(base, key)
        if templates.is_ready(connection, name):
            return name, key
        with FileLock(self.place.repo.git_dir / "worktree-gates" / "postgres-template.lock"):
            templates.build(
                self.admin("postgres"), name, engine.setup, self.place.config.root, f"{base}_tpl_"
            )
        return name, key

    def isolated(self) -> Server:
        """A fresh database cloned from the template; drop it with :meth:`release`."""
        if self._broken:
            raise GatesError(self._broken)
        if "postgres" not in self._cloners:
            from pytest_worktree_gates.databases import templates

            server = self.admin("postgres")
            # The probe's connection when this process just started or adopted the server.
            connection = take_connection(server)
            try:
                template, key = self.template(connection)
            except GatesError as error:
                connection.close()
                self._broken = str(error)
                raise
            stem = templates.clone_stem(self.base("postgres"))
            self._cloners["postgres"] = templates.Cloner(server, connection, template, key, stem)
        name = self._cloners["postgres"].take()
        return self.admin("postgres").with_database(name)

    def release(self, server: Server) -> None:
        self._cloners["postgres"].drop(server.database)

    def close(self) -> None:
        for cloner in self._cloners.values():
            cloner.close()
        self._cloners.clear()
