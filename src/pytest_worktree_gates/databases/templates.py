"""Template databases for ``isolated_postgres``: schema set up once, cloned per test.

The template's name carries the fingerprint of the configured ``fingerprint`` globs, the setup
commands and the server version. A change to any of them names a new template, so a stale
schema is never reused. A template counts as good only once PostgreSQL marks it
``IS_TEMPLATE``, which happens after every setup command succeeded: a failed or interrupted
setup leaves a plain database that the next run drops and rebuilds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pytest_worktree_gates.databases import admin
from pytest_worktree_gates.databases.base import Server, client, connect
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


def is_ready(connection: Any, name: str) -> bool | None:
    """True: a good template; False: a leftover to rebuild; None: no such database."""
    row = connection.execute(
        "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)
    ).fetchone()
    return None if row is None else bool(row[0])


def build(
    admin_server: Server, name: str, setup: Iterable[str], root: Path, stale_prefix: str
) -> None:
    """Create template ``name`` and run ``setup`` against it; the caller holds the lock."""
    connection = connect(admin_server, autocommit=True)
    try:
        ready = is_ready(connection, name)
    finally:
        connection.close()
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


# Ready clones kept in the pool: during a session the background thread keeps at least
# AHEAD_MIN; after it, the pool is refilled to what the session took, up to AHEAD_MAX. Each
# clone of a small template is about 8 MB on disk (PostgreSQL's own catalogs).
AHEAD_MIN = 2
AHEAD_MAX = 20


def clone_stem(base: str) -> str:
    """The prefix of every clone of the worktree's database, short enough to add suffixes to."""
    if len(base) > 30:
        base = f"{base[:19]}_{hashlib.sha256(base.encode()).hexdigest()[:10]}"
    return f"{base}_iso_"


def ready_prefix(stem: str, key: str) -> str:
    """Clones made ahead from the template with fingerprint ``key``, untouched and unclaimed."""
    return f"{stem}{key}_r"


def taken_owner(stem: str, name: str) -> int | None:
    """The pid of the process that claimed clone ``name``, or None if it is not a claimed one."""
    match = re.fullmatch(r"t(\d+)_[0-9a-f]{4}_\d+", name.removeprefix(stem))
    return int(match.group(1)) if match and name.startswith(stem) else None


# What follows the stem in a ready clone's name, and in a clone of releases before the pool.
READY = re.compile(r"[0-9a-f]{12}_r[0-9a-f]{8}")
OLDER = re.compile(r"(main|gw\d+)_\d+")


def leftovers(names: Iterable[str], stem: str, key: str, alive: Callable[[int], bool]) -> list[str]:
    """Clones to drop: ready ones of another template and claimed ones whose process is gone.

    Ready clones of the current template are kept for this session to claim; claimed ones of a
    live process belong to a concurrent session or xdist worker. Only names of our own making
    count: on a shared server another worktree's database may start with the same stem.
    """
    found = []
    for name in names:
        rest = name.removeprefix(stem)
        if name.startswith(ready_prefix(stem, key)) or not name.startswith(stem):
            continue
        owner = taken_owner(stem, name)
        if owner is not None:
            if not alive(owner):
                found.append(name)
        elif READY.fullmatch(rest) or OLDER.fullmatch(rest):
            found.append(name)
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


class Pool:
    """The ready clones of one template on one server, made and claimed over one connection.

    A ready clone is made under its own name (``CREATE DATABASE`` either completes or leaves
    nothing) and claimed by renaming it: a rename is atomic, so of two sessions or workers that
    race for one clone exactly one gets it, and a clone is never handed out twice.
    """

    def __init__(self, connection: Any, template: str, key: str, stem: str) -> None:
        self.connection = connection
        self.template = template
        self.prefix = ready_prefix(stem, key)
        self.stem = stem
        digest = hashlib.sha256(template.encode()).digest()
        self.lock = int.from_bytes(digest[:8], "big", signed=True)
        # PostgreSQL 15's default, WAL_LOG, writes the whole clone (system catalogs included,
        # ~7.5 MB) to the WAL; FILE_COPY copies the files. For a small template FILE_COPY
        # measured 15 ms against 30 ms (median of 10 clones, local PostgreSQL 15).
        version = int(connection.execute("SHOW server_version_num").fetchone()[0])
        self.strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""

    def ready(self) -> list[str]:
        rows = self.connection.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY oid",
            (self.prefix,),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def make(self, up_to: int | None) -> bool:
        """Make one ready clone, unless ``up_to`` are ready already; True if one was made.

        Clones of one template are serialized by an advisory lock across workers, sessions and
        refills, so the pool's size is checked and grown by one process at a time.
        """
        run = self.connection.execute
        run("SELECT pg_advisory_lock(%s)", (self.lock,))
        try:
            if up_to is not None and len(self.ready()) >= up_to:
                return False
            name = f"{self.prefix}{secrets.token_hex(4)}"
            run(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"{self.strategy}')
        finally:
            run("SELECT pg_advisory_unlock(%s)", (self.lock,))
        return True

    def claim(self, name: str) -> bool:
        """Take the first ready clone by renaming it to ``name``; False if none was left."""
        errors = client("postgres").errors
        for ready in self.ready():
            try:
                self.connection.execute(f'ALTER DATABASE "{ready}" RENAME TO "{name}"')
            except (errors.InvalidCatalogName, errors.ObjectInUse):
                continue  # claimed by another session or worker in the meantime
            return True
        return False

    def drop(self, name: str) -> None:
        self.connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def clones(self) -> list[str]:
        """Every clone of the worktree's database: ready, claimed, of any template."""
        rows = self.connection.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (self.stem,)
        ).fetchall()
        return sorted(str(row[0]) for row in rows)


class Cloner:
    """Hands each test a fresh clone of the template from a pool of clones made ahead.

    ``CREATE DATABASE ... TEMPLATE`` costs 15-100 ms however small the template (every database
    carries its own system catalogs), while a test's setup should cost next to nothing. So a
    background thread keeps clones ready, and drops the used ones, while the tests run; a test
    only claims a ready clone (a rename). Ready clones that a session leaves unclaimed stay for
    the next session of the same template, and after the session a detached process (see
    :mod:`refill`) drops the last used clones and refills the pool to what the session took.
    """

    def __init__(
        self, admin_server: Server, connection: Any, template: str, key: str, stem: str
    ) -> None:
        """``connection`` (autocommit, to ``admin_server``) becomes the cloner's own."""
        self.server = admin_server
        self.key = key
        self.stem = stem
        self.owner = f"{stem}t{os.getpid()}_{secrets.token_hex(2)}_"
        self.numbers = itertools.count()
        self.taken = 0
        # psycopg connections are not shared between threads: each side has its own. The
        # background thread logs in itself, so that the session does not wait for it.
        self.pool = Pool(connection, template, key, stem)
        self.background: Pool | None = None
        self.changed = threading.Condition()
        self.drops = leftovers(self.pool.clones(), stem, key, pid_alive)
        self.waiting = 0
        self.made = 0
        self.stopping = False
        self.busy: str | None = None  # a clone being dropped, or "cloning"
        self.failure: Exception | None = None
        self.thread = threading.Thread(target=self._work, name="wtg-clones", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        """Drops used clones and keeps the pool full; a waiting test comes first."""
        try:
            self.background = Pool(
                connect(self.server, autocommit=True), self.pool.template, self.key, self.stem
            )
            while True:
                with self.changed:
                    if self.stopping:
                        return
                    # One drop per round, so that a stop or a waiting test is seen soon.
                    drop = self.drops.pop(0) if self.drops and not self.waiting else None
                    self.busy = drop or "cloning"
                    urgent = self.waiting > 0
                    taken = self.taken
                if drop is not None:
                    self.background.drop(drop)
                made = self.background.make(None if urgent else AHEAD_MIN)
                with self.changed:
                    self.busy = None
                    self.made += made
                    self.changed.notify_all()
                    if not made and drop is None:  # the pool is full: sleep until that changes
                        self.changed.wait_for(functools.partial(self._wanted, taken))
        except Exception as error:  # reported to the test that waits, not lost in a thread
            with self.changed:
                self.failure = error
                self.changed.notify_all()

    def _wanted(self, taken: int) -> bool:
        """Work for the thread: stop, drops, a waiting test or a claim since ``taken``."""
        return bool(self.stopping or self.drops or self.waiting or self.taken != taken)

    def _news(self, made: int) -> bool:
        """For a waiting test: a clone was made since ``made``, or cloning failed."""
        return self.made != made or self.failure is not None

    def take(self) -> str:
        """A fresh clone's name, claimed for this session; the pool is refilled behind it."""
        name = f"{self.owner}{next(self.numbers)}"
        while not self.pool.claim(name):
            with self.changed:
                if self.failure is not None:
                    raise GatesError(
                        f"cloning template {self.pool.template} failed: {self.failure}"
                    )
                made = self.made
                self.waiting += 1
                self.changed.notify_all()
                # Another session's clone may turn up too, so look again now and then.
                self.changed.wait_for(functools.partial(self._news, made), timeout=0.5)
                self.waiting -= 1
        with self.changed:
            self.taken += 1
            self.changed.notify_all()  # one fewer ready: the thread makes the next
        return name

    def drop(self, name: str) -> None:
        """Drop a used clone in the background."""
        with self.changed:
            self.drops.append(name)
            self.changed.notify_all()

    def close(self) -> None:
        """Stop the thread; a detached process drops the rest and refills the pool."""
        with self.changed:
            self.stopping = True
            busy = self.busy
            self.changed.notify_all()
        if busy is not None and self.background is not None:
            # Not worth waiting for: the statement is cancelled (and rolled back), and the
            # refill after the session drops that clone or makes a new one.
            with contextlib.suppress(Exception):
                self.background.connection.cancel_safe(timeout=5)
        self.thread.join()
        if busy not in (None, "cloning"):
            self.drops.append(str(busy))  # DROP ... IF EXISTS: harmless if it went through
        if self.background is not None:
            self.background.connection.close()
        self.pool.connection.close()
        if self.drops or self.taken:
            from pytest_worktree_gates.databases import refill

            refill.spawn(
                refill.Job(
                    server=self.server,
                    template=self.pool.template,
                    key=self.key,
                    stem=self.stem,
                    drops=tuple(self.drops),
                    ahead=max(AHEAD_MIN, min(AHEAD_MAX, self.taken)),
                )
            )
