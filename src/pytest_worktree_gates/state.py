"""The repo's shared state: one SQLite database (WAL) in the git common dir.

Every worktree of a repo sees the same file, so a verdict recorded in one worktree is known to
``merge`` and ``status`` in another. WAL lets readers go on while a gate writes, and every
multi-step change runs in one transaction so that a crash leaves a consistent database.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_worktree_gates.errors import GatesError

# Each entry migrates the schema one version up; append, never edit.
MIGRATIONS = (
    """
    CREATE TABLE ledger (
        id INTEGER PRIMARY KEY,
        gate TEXT NOT NULL,
        tree TEXT NOT NULL,
        config TEXT NOT NULL,
        worktree TEXT NOT NULL,
        passed INTEGER NOT NULL,
        exit_code INTEGER NOT NULL,
        report TEXT NOT NULL,
        recorded_at REAL NOT NULL
    );
    CREATE INDEX ledger_verdict ON ledger (gate, tree, config);
    CREATE INDEX ledger_worktree ON ledger (worktree, gate);
    """,
    # Hook result cache (hookcache.py): a pass of one check on one blob (or whole tree) under
    # one tool version and check config; only passes are kept, a failure is always rerun.
    """
    CREATE TABLE hook_passes (
        check_name TEXT NOT NULL,
        setup TEXT NOT NULL,
        subject TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        PRIMARY KEY (check_name, setup, subject)
    ) WITHOUT ROWID;
    CREATE TABLE tool_versions (
        program TEXT NOT NULL,
        stamp TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (program, stamp)
    ) WITHOUT ROWID;
    """,
    # Per-worktree databases. A worktree is its absolute git dir. The UNIQUE port is what makes
    # "two worktrees never share a port" hold even when two processes lease at the same moment.
    """
    CREATE TABLE port_leases (
        worktree TEXT NOT NULL,
        engine TEXT NOT NULL,
        port INTEGER NOT NULL UNIQUE,
        leased_at REAL NOT NULL,
        PRIMARY KEY (worktree, engine)
    );
    CREATE TABLE services (
        worktree TEXT NOT NULL,
        engine TEXT NOT NULL,
        backend TEXT NOT NULL,
        ident TEXT NOT NULL,
        config TEXT NOT NULL,
        started_at REAL NOT NULL,
        PRIMARY KEY (worktree, engine)
    );
    """,
    # The worktree lifecycle (issue 5): the registry of worktrees made by `new`, review verdicts
    # bound to an exact tree, and what `merge` did to main. Approvals are keyed by the tree, so
    # a new commit that changes the tree makes them stale without anyone deleting a row.
    """
    CREATE TABLE worktrees (
        name TEXT PRIMARY KEY,
        branch TEXT NOT NULL,
        path TEXT NOT NULL,
        git_dir TEXT NOT NULL,
        variant TEXT NOT NULL,
        description TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY,
        worktree TEXT NOT NULL,
        tree TEXT NOT NULL,
        by TEXT NOT NULL,
        note TEXT NOT NULL,
        verdict TEXT NOT NULL,
        recorded_at REAL NOT NULL
    );
    CREATE INDEX approvals_tree ON approvals (worktree, tree);
    CREATE TABLE merges (
        id INTEGER PRIMARY KEY,
        worktree TEXT NOT NULL,
        branch TEXT NOT NULL,
        main_before TEXT NOT NULL,
        main_after TEXT NOT NULL,
        tree TEXT NOT NULL,
        recorded_at REAL NOT NULL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        worktree TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL,
        recorded_at REAL NOT NULL
    );
    """,
)


@contextmanager
def connect(state_dir: Path) -> Iterator[sqlite3.Connection]:
    """Open (creating and migrating as needed) the state database."""
    state_dir.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(state_dir / "state.db", timeout=30, isolation_level=None)
    with closing(connection):
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA busy_timeout=30000")
        try:
            _migrate(connection)
        except sqlite3.DatabaseError as error:
            # A file from another build of this tool, or a damaged one: say so, touch nothing.
            raise GatesError(
                f"{state_dir / 'state.db'}: cannot use the state database ({error}); move it "
                "aside to start a fresh one (this forgets recorded verdicts, approvals, leases)"
            ) from None
        yield connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _migrate(connection: sqlite3.Connection) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version >= len(MIGRATIONS):
        return
    with transaction(connection):
        # Re-read inside the write lock: another process may have migrated meanwhile.
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in script.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {number}")


@dataclass(frozen=True)
class Verdict:
    """One ledger entry: a gate's result for a tree under a config."""

    gate: str
    tree: str
    config: str
    worktree: str
    passed: bool
    report: dict[str, Any]  # the gate's JSON report
    recorded_at: float


def record(
    connection: sqlite3.Connection, report: dict[str, Any], config: str, worktree: str
) -> None:
    """Record a verdict; only a clean tree has a hash, so only clean runs are recorded."""
    if report.get("tree") is None:
        return
    with transaction(connection):
        connection.execute(
            "INSERT INTO ledger (gate, tree, config, worktree, passed, exit_code, report,"
            " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                report["gate"],
                report["tree"],
                config,
                worktree,
                int(report["passed"]),
                report["exit_code"],
                json.dumps(report),
                time.time(),
            ),
        )


def _verdict(row: tuple[str, str, str, str, int, str, float]) -> Verdict:
    gate, tree, config, worktree, passed, report, recorded_at = row
    return Verdict(gate, tree, config, worktree, bool(passed), json.loads(report), recorded_at)


_COLUMNS = "gate, tree, config, worktree, passed, report, recorded_at"


def lookup(connection: sqlite3.Connection, gate: str, tree: str, config: str) -> Verdict | None:
    """The latest verdict of ``gate`` on exactly this tree and config."""
    row = connection.execute(
        f"SELECT {_COLUMNS} FROM ledger WHERE gate = ? AND tree = ? AND config = ?"
        " ORDER BY id DESC LIMIT 1",
        (gate, tree, config),
    ).fetchone()
    return _verdict(row) if row else None


def latest(connection: sqlite3.Connection, gate: str, worktree: str) -> Verdict | None:
    """The latest verdict of ``gate`` in a worktree, whatever its tree."""
    row = connection.execute(
        f"SELECT {_COLUMNS} FROM ledger WHERE gate = ? AND worktree = ? ORDER BY id DESC LIMIT 1",
        (gate, worktree),
    ).fetchone()
    return _verdict(row) if row else None
