"""``worktree-gates list``: one row per worktree, fast enough to run all the time (no tests)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pytest_worktree_gates.cli.context import here
from pytest_worktree_gates.worktrees import overview


def add_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "list",
        help="one row per worktree: branch, ahead/behind, dirty, variant, gates, databases",
        description="List the registered worktrees with their branch, commits ahead/behind "
        "main, uncommitted changes, variant, the state of each gate for the current tree "
        "(passed, failed, stale, pending) and their databases and ports. Runs no tests.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


SHORT = {"passed": "ok", "failed": "FAIL", "stale": "stale", "pending": "-"}


def run(args: argparse.Namespace) -> int:
    context = here()
    rows = overview.collect(context.repo, context.config)
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=2))
        return 0
    if not rows:
        print("no worktrees yet; create one with `worktree-gates new NAME`")
        return 0
    table = [("NAME", "BRANCH", "AHEAD/BEHIND", "DIRTY", "VARIANT", "STATE", "GATES", "DATABASES")]
    for row in rows:
        ahead = "-" if row.ahead is None else f"+{row.ahead}/-{row.behind}"
        dirty = "missing" if row.dirty is None else ("yes" if row.dirty else "no")
        gates = " ".join(f"{gate}:{SHORT[value]}" for gate, value in row.gates.items())
        databases = ", ".join(row.databases) or "-"
        table.append((row.name, row.branch, ahead, dirty, row.variant, row.state, gates, databases))
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    return 0
