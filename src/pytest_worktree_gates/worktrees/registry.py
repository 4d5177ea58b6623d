"""The registry of worktrees, review verdicts, merges and events, in the shared state database.

Each function is one transaction (or one read), so a crash between two of them leaves rows that
are each whole; the lifecycle code orders them so that a half-done command can be run again.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates import state
from pytest_worktree_gates.errors import GatesError

READY, CREATING, FAILED, MERGED = "ready", "creating", "failed", "merged"


@dataclass(frozen=True)
class Worktree:
    name: str
    branch: str
    path: Path
    git_dir: Path
    variant: str
    description: str
    state: str
    created_at: float


@dataclass(frozen=True)
class Review:
    by: str
    tree: str
    note: str
    verdict: str  # approved | changes-requested
    recorded_at: float


_COLUMNS = "name, branch, path, git_dir, variant, description, state, created_at"


def _worktree(row: tuple[str, str, str, str, str, str, str, float]) -> Worktree:
    name, branch, path, git_dir, variant, description, current, created = row
    return Worktree(name, branch, Path(path), Path(git_dir), variant, description, current, created)


def add(db: sqlite3.Connection, item: Worktree) -> None:
    with state.transaction(db):
        db.execute(
            f"INSERT INTO worktrees ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (item.name, item.branch, str(item.path), str(item.git_dir), item.variant,
             item.description, item.state, item.created_at),
        )  # fmt: skip
        _event(db, item.name, "created", item.branch)


def find(db: sqlite3.Connection, name: str) -> Worktree | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM worktrees WHERE name = ?", (name,)).fetchone()
    return _worktree(row) if row else None


def get(db: sqlite3.Connection, name: str) -> Worktree:
    found = find(db, name)
    if found is None:
        known = ", ".join(item.name for item in every(db)) or "none"
        raise GatesError(
            f"unknown worktree {name!r} (known: {known}); see `worktree-gates list`, "
            f"or create it with `worktree-gates new {name}`"
        )
    return found


def every(db: sqlite3.Connection) -> list[Worktree]:
    return [_worktree(row) for row in db.execute(f"SELECT {_COLUMNS} FROM worktrees ORDER BY name")]


def set_state(db: sqlite3.Connection, name: str, new_state: str, why: str = "") -> None:
    with state.transaction(db):
        db.execute("UPDATE worktrees SET state = ? WHERE name = ?", (new_state, name))
        _event(db, name, new_state, why)


def set_git_dir(db: sqlite3.Connection, name: str, git_dir: Path) -> None:
    """The admin directory git chose for the worktree (it may add a suffix to the name)."""
    with state.transaction(db):
        db.execute("UPDATE worktrees SET git_dir = ? WHERE name = ?", (str(git_dir), name))


def remove(db: sqlite3.Connection, name: str, why: str) -> None:
    with state.transaction(db):
        db.execute("DELETE FROM worktrees WHERE name = ?", (name,))
        _event(db, name, "removed", why)


def review(db: sqlite3.Connection, name: str, tree: str, by: str, note: str, verdict: str) -> None:
    with state.transaction(db):
        db.execute(
            "INSERT INTO approvals (worktree, tree, by, note, verdict, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, tree, by, note, verdict, time.time()),
        )
        _event(db, name, verdict, f"{by} on tree {tree}")


def reviews(db: sqlite3.Connection, name: str) -> list[Review]:
    rows = db.execute(
        "SELECT by, tree, note, verdict, recorded_at FROM approvals WHERE worktree = ? ORDER BY id",
        (name,),
    )
    return [Review(*row) for row in rows]


def record_merge(
    db: sqlite3.Connection, name: str, branch: str, before: str, after: str, tree: str
) -> None:
    """The merge row and the worktree's "merged" state, in one transaction."""
    with state.transaction(db):
        db.execute("UPDATE worktrees SET state = ? WHERE name = ?", (MERGED, name))
        db.execute(
            "INSERT INTO merges (worktree, branch, main_before, main_after, tree, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, branch, before, after, tree, time.time()),
        )
        _event(db, name, "merged", f"main {before} -> {after}")


def _event(db: sqlite3.Connection, name: str, kind: str, detail: str) -> None:
    db.execute(
        "INSERT INTO events (worktree, kind, detail, recorded_at) VALUES (?, ?, ?, ?)",
        (name, kind, detail, time.time()),
    )
