"""Port leases: each (worktree, engine) gets its own port, recorded in the shared state.

A worktree's port is preferred from a hash of its git dir and the engine, so it is usually the
same port every time and across machines' state resets. The preference is only a hint: the
lease is checked with a real bind on 127.0.0.1 and recorded under a UNIQUE constraint inside one
``BEGIN IMMEDIATE`` transaction, so concurrent processes of different worktrees serialize on the
state database and can never be handed the same port.
"""

from __future__ import annotations

import errno
import hashlib
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.state import transaction

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Lease:
    worktree: str
    engine: str
    port: int
    leased_at: float


def preferred_port(worktree: str, engine: str, span: tuple[int, int]) -> int:
    """A stable port for ``(worktree, engine)`` inside ``span`` (inclusive)."""
    low, high = span
    digest = hashlib.sha256(f"{worktree}\0{engine}".encode()).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


def candidates(preferred: int, span: tuple[int, int]) -> Iterator[int]:
    """Every port of the span once, starting at the preferred one and wrapping around."""
    low, high = span
    yield from range(preferred, high + 1)
    yield from range(low, preferred)


def can_bind(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:PORT right now.

    SO_REUSEADDR matches what the servers themselves do, so a port in TIME_WAIT after a
    server stopped counts as free (the server will be able to bind it), a listening one does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


def find(connection: sqlite3.Connection, worktree: str, engine: str) -> Lease | None:
    row = connection.execute(
        "SELECT worktree, engine, port, leased_at FROM port_leases"
        " WHERE worktree = ? AND engine = ?",
        (worktree, engine),
    ).fetchone()
    return Lease(*row) if row else None


def lease(
    connection: sqlite3.Connection,
    worktree: str,
    engine: str,
    span: tuple[int, int],
    *,
    must_bind: bool = False,
) -> int:
    """The port of ``(worktree, engine)``, leasing a new one if it has none.

    An existing lease is kept (its server may be the one listening on it) unless ``must_bind``
    says the caller is about to start a server and the port has been taken by someone else
    meanwhile: then the lease moves to the next free port.
    """
    with transaction(connection):
        current = find(connection, worktree, engine)
        if current is not None:
            in_span = span[0] <= current.port <= span[1]
            if in_span and (not must_bind or can_bind(current.port)):
                return current.port
            connection.execute(
                "DELETE FROM port_leases WHERE worktree = ? AND engine = ?", (worktree, engine)
            )
        taken = {row[0] for row in connection.execute("SELECT port FROM port_leases")}
        for port in candidates(preferred_port(worktree, engine, span), span):
            if port in taken or not can_bind(port):
                continue
            connection.execute(
                "INSERT INTO port_leases (worktree, engine, port, leased_at) VALUES (?, ?, ?, ?)",
                (worktree, engine, port, time.time()),
            )
            return port
    raise GatesError(
        f"port range {span[0]}-{span[1]} is exhausted: every port is leased or in use; "
        "widen [tool.worktree-gates.databases] port-range or run `worktree-gates db gc`"
    )


def release(connection: sqlite3.Connection, worktree: str, engine: str | None = None) -> int:
    """Drop the leases of a worktree (one engine, or all); returns how many went."""
    with transaction(connection):
        if engine is None:
            cursor = connection.execute("DELETE FROM port_leases WHERE worktree = ?", (worktree,))
        else:
            cursor = connection.execute(
                "DELETE FROM port_leases WHERE worktree = ? AND engine = ?", (worktree, engine)
            )
        return cursor.rowcount


def all_leases(connection: sqlite3.Connection) -> list[Lease]:
    rows = connection.execute(
        "SELECT worktree, engine, port, leased_at FROM port_leases ORDER BY worktree, engine"
    )
    return [Lease(*row) for row in rows]
