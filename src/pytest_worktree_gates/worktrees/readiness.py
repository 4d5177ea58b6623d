"""Read what the ledger and the reviews say about one worktree's current tree."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pytest_worktree_gates import state
from pytest_worktree_gates.config import Config
from pytest_worktree_gates.worktrees import plan, registry


def gate_states(
    db: sqlite3.Connection, config: Config, git_dir: str, trees: Sequence[str]
) -> dict[str, str]:
    """Each configured gate's state for the first of ``trees`` it has a verdict for."""
    key = config.digest()
    states = {}
    for gate in config.gates:
        passed: bool | None = None
        for tree in trees:
            verdict = state.lookup(db, gate, tree, key)
            if verdict is not None:
                passed = verdict.passed
                if passed:
                    break
        ran = passed is not None or state.latest(db, gate, git_dir) is not None
        states[gate] = plan.gate_state(passed, ran)
    return states


def review(db: sqlite3.Connection, name: str, trees: Sequence[str]) -> plan.ReviewOutcome:
    return plan.review_outcome(registry.reviews(db, name), trees)
