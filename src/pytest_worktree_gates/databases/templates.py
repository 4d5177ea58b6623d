"""Template databases for ``isolated_postgres``: schema set up once, cloned per test.

The template's name carries the fingerprint of the configured ``fingerprint`` globs, the setup
commands and the server version. A change to any of them names a new template, so a stale
schema is never reused. A template counts as good only once PostgreSQL marks it
``IS_TEMPLATE``, which happens after every setup command succeeded: a failed or interrupted
setup leaves a plain database that the next run drops and rebuilds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pytest_worktree_gates.databases import admin
from pytest_worktree_gates.databases.base import Server, connect
from pytest_worktree_gates.errors import GatesError


def fingerprint(root: Path, globs: Iterable[str], setup: Iterable[str], version: str) -> str:
    """A hash of the matched files' names and contents, the setup commands and the version."""
    digest = hashlib.sha256()
    digest.update(version.encode() + b"\0")
    for command in setup:
        digest.update(b"cmd\0" + command.encode() + b"\0")
    files = sorted({path for glob in globs for path in root.glob(glob) if path.is_file()})
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def template_name(database: str, key: str) -> str:
    return admin.fit(f"{database}_tpl_{key}")


def is_ready(admin_server: Server, name: str) -> bool | None:
    """True: a good template; False: a leftover to rebuild; None: no such database."""
    connection = connect(admin_server, autocommit=True)
    try:
        row = connection.execute(
            "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    finally:
        connection.close()
    return None if row is None else bool(row[0])


def build(
    admin_server: Server, name: str, setup: Iterable[str], root: Path, stale_prefix: str
) -> None:
    """Create template ``name`` and run ``setup`` against it; the caller holds the lock."""
    ready = is_ready(admin_server, name)
    if ready:
        return
    if ready is False:
        admin.drop(admin_server, name)
    admin.create(admin_server, name)
    server = admin_server.with_database(name)
    for command in setup:
        done = subprocess.run(
            command,
            shell=True,
            cwd=root,
            env={**os.environ, **server.env, "WORKTREE_GATES_DATABASE_URL": server.url},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            admin.drop(admin_server, name)
            output = (done.stdout + done.stderr).strip().splitlines()[-20:]
            shown = "\n    ".join(output) or "(no output)"
            raise GatesError(
                f"database setup command {command!r} failed (exit {done.returncode}); "
                f"no template was kept. Its output:\n    {shown}"
            )
    connection = connect(admin_server, autocommit=True)
    try:
        connection.execute(f'ALTER DATABASE "{name}" IS_TEMPLATE true')
        # Older templates of this database are stale now; drop them to save space.
        for old in admin.names(admin_server, stale_prefix):
            if old != name:
                connection.execute(f'ALTER DATABASE "{old}" IS_TEMPLATE false')
                connection.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
    finally:
        connection.close()


class Cloner:
    """Clones a template per test, one clone always prepared ahead in a background thread.

    ``CREATE DATABASE ... TEMPLATE`` costs 30-60 ms however small the template (every database
    carries its own system catalogs), while a test's setup should cost next to nothing. So the
    next test's clone is made while the current test runs; a test then waits only for whatever
    part of that work its predecessor did not already cover.

    Cloning fails while another session uses the template, and two clones of one template may
    collide; an advisory lock keyed by the template serializes them across xdist workers and
    concurrent sessions.
    """

    def __init__(self, admin_server: Server, template: str, names: Iterator[str]) -> None:
        self.template = template
        self.names = names
        digest = hashlib.sha256(template.encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        self.connection: Any = connect(admin_server, autocommit=True)
        # psycopg connections are not shared between threads: the cloning thread has its own.
        self.cloning: Any = connect(admin_server, autocommit=True)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wtg-clone")
        self.ahead: Future[str] | None = None
        # PostgreSQL 15's default, WAL_LOG, writes the whole clone (system catalogs included,
        # ~7.5 MB) to the WAL; FILE_COPY copies the files. For a small template FILE_COPY
        # measured 47 ms against 71 ms (median of 10 clones, local PostgreSQL 15).
        version = int(self.connection.execute("SHOW server_version_num").fetchone()[0])
        self.strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""

    def _clone(self, name: str) -> str:
        run = self.cloning.execute
        run("SELECT pg_advisory_lock(%s)", (self.key,))
        try:
            run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            run(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"{self.strategy}')
        finally:
            run("SELECT pg_advisory_unlock(%s)", (self.key,))
        return name

    def take(self) -> str:
        """A fresh clone's name; starts preparing the next one."""
        ahead = self.ahead or self.pool.submit(self._clone, next(self.names))
        self.ahead = None
        try:
            name = ahead.result()
        except Exception as error:
            raise GatesError(f"cloning template {self.template} failed: {error}") from None
        self.ahead = self.pool.submit(self._clone, next(self.names))
        return name

    def drop(self, name: str) -> None:
        self.connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.ahead is not None:
            with contextlib.suppress(Exception):
                self.drop(self.ahead.result())
        self.pool.shutdown(wait=True)
        self.cloning.close()
        self.connection.close()
