"""Provision a worktree's servers: choose the backend, lease the port, start or adopt, record.

This is the one place that orders the side effects. Per (worktree, engine) everything happens
under a file lock in the worktree's git dir, so xdist workers and concurrent CLI calls start a
server once; the shared state (leases, services) changes only inside SQLite transactions.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from pytest_worktree_gates import git, state
from pytest_worktree_gates.config import Config, EngineConfig
from pytest_worktree_gates.databases import ports, warm
from pytest_worktree_gates.databases.base import (
    SPECS,
    Server,
    Target,
    read_or_create_secret,
    secret_file,
)
from pytest_worktree_gates.databases.filelock import FileLock
from pytest_worktree_gates.errors import GatesError


@dataclass(frozen=True)
class Place:
    """The configuration and the worktree that databases are provisioned for."""

    config: Config
    repo: git.Repo

    @property
    def worktree(self) -> str:
        return str(self.repo.git_dir)


@dataclass(frozen=True)
class Row:
    """One line of `db status`."""

    engine: str
    backend: str
    port: int | None
    state: str
    since: float | None


def backend_module(name: str) -> ModuleType:
    if name == "local":
        from pytest_worktree_gates.databases import local

        return local
    if name == "docker":
        from pytest_worktree_gates.databases import docker

        return docker
    if name == "external":
        from pytest_worktree_gates.databases import external

        return external
    raise GatesError(f"unknown database backend {name!r}")  # pragma: no cover - config checks


def docker_answers() -> bool:
    """A cheap look for a Docker engine: a socket or DOCKER_HOST, then a ping."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not Path("/var/run/docker.sock").exists():
        return False
    try:
        module = backend_module("docker")
    except GatesError:
        return False
    answers: bool = module.engine_answers()
    return answers


def local_binaries(engines: tuple[EngineConfig, ...]) -> bool:
    """The local backend's own check, so ``auto`` picks it exactly when it can start."""
    from pytest_worktree_gates.databases import local

    for engine in engines:
        try:
            local.check_binaries(engine.name)
        except GatesError:
            return False
    return True


# What ``auto`` chose per worktree in this process: one probe and one message for all engines.
_auto_choices: dict[str, str] = {}


def choose_backend(place: Place, recorded: str | None) -> str:
    """The configured backend; for ``auto``, what an earlier run chose, else docker, else local.

    Sticking to the recorded choice keeps one worktree from getting a second server when a
    Docker engine comes up or goes away between runs.
    """
    configured = place.config.databases.backend
    if configured != "auto":
        return configured
    if recorded:
        return recorded
    if place.worktree in _auto_choices:  # another engine of this worktree already chose
        return _auto_choices[place.worktree]
    if docker_answers():
        chosen, why = "docker", "a Docker engine answers"
    elif local_binaries(place.config.databases.engines):
        chosen, why = "local", "no Docker engine answers; server binaries are installed"
    else:
        raise GatesError(
            "no database backend is available: start a Docker engine (or set DOCKER_HOST), or "
            "install the server binaries (apt-get install postgresql mariadb-server "
            'redis-server), or set [tool.worktree-gates.databases] backend = "external"'
        )
    print(f"worktree-gates: databases use the {chosen} backend ({why})", file=sys.stderr)
    _auto_choices[place.worktree] = chosen
    return chosen


def _recorded(place: Place, engine: str) -> tuple[str, str, float] | None:
    with state.connect(place.repo.state_dir) as db:
        return _recorded_in(db, place, engine)


def _recorded_in(
    db: sqlite3.Connection, place: Place, engine: str
) -> tuple[str, str, float] | None:
    row = db.execute(
        "SELECT backend, ident, started_at FROM services WHERE worktree = ? AND engine = ?",
        (place.worktree, engine),
    ).fetchone()
    return (str(row[0]), str(row[1]), float(row[2])) if row else None


def worktree_name(repo: git.Repo) -> str:
    """A linked worktree's name as git knows it (its git dir's name), else the repo's dir.

    Derived from the git dir alone, so gc can name the databases of a worktree that is gone.
    """
    if repo.git_dir != repo.common_dir:
        return repo.git_dir.name
    return repo.root.name


def base_database(place: Place, engine: EngineConfig, backend: str) -> str:
    """The worktree's own database name: inside a shared external server it carries the
    worktree's name; on a server of its own the configured name is enough."""
    if backend == "external":
        from pytest_worktree_gates.databases.external import base_database as external_base

        return external_base(engine.database, worktree_name(place.repo))
    return engine.database


def target(place: Place, engine: EngineConfig, port: int) -> Target:
    return Target(
        engine=SPECS[engine.name],
        config=engine,
        repo_name=place.repo.common_dir.parent.name
        if place.repo.common_dir.name == ".git"
        else place.repo.common_dir.name,
        worktree_name=worktree_name(place.repo),
        worktree=place.repo.git_dir,
        common_dir=place.repo.common_dir,
        port=port,
        password=read_or_create_secret(secret_file(place.repo.git_dir, engine.name)),
        network=place.config.databases.network,
    )


def lock(place: Place, engine: str) -> FileLock:
    return FileLock(place.repo.git_dir / "worktree-gates" / f"{engine}.lock")


def ensure(place: Place, name: str) -> Server:
    """The engine's server for this worktree, started or adopted; its maintenance database."""
    engine = place.config.databases.engine(name)
    # One state connection for the whole call: every session start passes through here.
    with lock(place, name), state.connect(place.repo.state_dir) as db:
        recorded = _recorded_in(db, place, name)
        backend = choose_backend(place, recorded[0] if recorded else None)
        module = backend_module(backend)
        port = 0  # an external server has its own port; we lease none
        if backend != "external":
            # must_bind: when our server is down, the port must be free to start it again.
            current = ports.find(db, place.worktree, name)
            running = bool(
                recorded is not None
                and current is not None
                and module.status(target(place, engine, current.port)).state == "running"
            )
            port = ports.lease(
                db, place.worktree, name, place.config.databases.ports, must_bind=not running
            )
        where = target(place, engine, port)
        server, ident = module.up(where)
        with state.transaction(db):
            # An adopted server leaves its row as it is: no write (and no fsync) per session.
            db.execute(
                "INSERT INTO services (worktree, engine, backend, ident, config, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (worktree, engine) DO UPDATE SET"
                " backend = excluded.backend, ident = excluded.ident, config = excluded.config,"
                " started_at = CASE WHEN services.ident = excluded.ident"
                " THEN services.started_at ELSE excluded.started_at END"
                " WHERE services.backend IS NOT excluded.backend"
                " OR services.ident IS NOT excluded.ident"
                " OR services.config IS NOT excluded.config",
                (place.worktree, name, backend, ident, engine.image, time.time()),
            )
        if backend == "local":
            # For the next session's warm path; written under the engine's lock, like the server.
            warm.remember(
                place.repo.root,
                place.repo.git_dir,
                place.config.path,
                server,
                base_database(place, engine, backend),
            )
        typed: Server = server
        return typed


def down(place: Place, purge: bool) -> list[str]:
    """Stop every configured engine of this worktree; ``purge`` also drops data and leases."""
    done = []
    for engine in place.config.databases.engines:
        with lock(place, engine.name):
            warm.forget(place.repo.git_dir, engine.name)
            recorded = _recorded(place, engine.name)
            with state.connect(place.repo.state_dir) as db:
                lease = ports.find(db, place.worktree, engine.name)
            where = target(place, engine, lease.port if lease else 0)
            if recorded is not None:
                backend_module(recorded[0]).down(where, purge)
            elif purge:
                # A provisioning that failed or was killed before it was recorded may still
                # have left data or a container behind: purge means all of it.
                backend_module("local").down(where, True)
                if docker_answers():
                    backend_module("docker").down(where, True)
            if purge:
                secret_file(place.repo.git_dir, engine.name).unlink(missing_ok=True)
                with state.connect(place.repo.state_dir) as db:
                    ports.release(db, place.worktree, engine.name)
                    with state.transaction(db):
                        db.execute(
                            "DELETE FROM services WHERE worktree = ? AND engine = ?",
                            (place.worktree, engine.name),
                        )
            done.append(engine.name)
    return done


def status(place: Place) -> list[Row]:
    rows = []
    for engine in place.config.databases.engines:
        recorded = _recorded(place, engine.name)
        with state.connect(place.repo.state_dir) as db:
            lease = ports.find(db, place.worktree, engine.name)
        if recorded is None:
            backend = place.config.databases.backend
            rows.append(Row(engine.name, backend, lease.port if lease else None, "absent", None))
            continue
        module = backend_module(recorded[0])
        now = module.status(target(place, engine, lease.port if lease else 0))
        since = recorded[2] if now.state == "running" else None
        rows.append(Row(engine.name, recorded[0], lease.port if lease else None, now.state, since))
    return rows


def live_worktrees(repo: git.Repo) -> set[str]:
    """The git dirs of the repo's worktrees that still exist (``git worktree list``)."""
    out = git.run(["worktree", "list", "--porcelain"], cwd=repo.root)
    found = {str(repo.common_dir)}
    for block in out.strip().split("\n\n"):
        lines = block.splitlines()
        if not lines or not lines[0].startswith("worktree ") or "prunable" in block:
            continue
        path = Path(lines[0][len("worktree ") :])
        dot_git = path / ".git"
        if dot_git.is_file():
            pointer = dot_git.read_text().strip().removeprefix("gitdir: ")
            gitdir = Path(pointer) if Path(pointer).is_absolute() else path / pointer
            found.add(str(gitdir.resolve()))
    return found


def _drop_external(place: Place, engine: str, worktree: Path) -> None:
    from pytest_worktree_gates.databases import external

    config = next((e for e in place.config.databases.engines if e.name == engine), None)
    if config is None:
        return  # no longer configured: no URL to reach it by
    gone = Target(
        engine=SPECS[engine],
        config=config,
        repo_name="",
        worktree_name=worktree.name,
        worktree=worktree,
        common_dir=place.repo.common_dir,
        port=0,
        password="",
    )
    external.down(gone, purge=True)


def gc(place: Place) -> list[str]:
    """Remove servers, data and leases of this repo's worktrees that no longer exist.

    Only this repo's state database is read, and only its rows are acted on, so another repo's
    servers are never touched.
    """
    live = live_worktrees(place.repo)
    removed = []
    with state.connect(place.repo.state_dir) as db:
        services = db.execute("SELECT worktree, engine, backend, ident FROM services").fetchall()
        leases = ports.all_leases(db)
    for worktree, engine, backend, ident in services:
        if worktree in live:
            continue
        home = Path(worktree) / "worktree-gates" / engine
        if backend == "local":
            from pytest_worktree_gates.databases import local

            local.kill_orphan(home, engine)
        elif backend == "external":
            _drop_external(place, engine, Path(worktree))
        else:
            backend_module(backend).remove(ident)
        removed.append(f"{engine} ({backend}) of {worktree}")
    # Containers whose state row was never written (a crash between create and record).
    if docker_answers():
        from pytest_worktree_gates.databases import docker

        for name, worktree, engine in docker.orphans(str(place.repo.common_dir), live):
            if not any(row[3] == name for row in services):
                docker.remove(name)
                removed.append(f"{engine} (docker) of {worktree}")
    gone = {lease.worktree for lease in leases} | {row[0] for row in services}
    with state.connect(place.repo.state_dir) as db:
        for worktree in sorted(gone - live):
            ports.release(db, worktree)
            with state.transaction(db):
                db.execute("DELETE FROM services WHERE worktree = ?", (worktree,))
            if Path(worktree).is_dir():
                shutil.rmtree(Path(worktree) / "worktree-gates", ignore_errors=True)
    return removed
