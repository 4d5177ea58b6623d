"""``worktree-gates baseline update``: write the coverage ratchet's committed baseline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_worktree_gates.cli.context import here
from pytest_worktree_gates.errors import GatesError


def add_parser(verbs: Any) -> None:
    baseline = verbs.add_parser(
        "baseline", help="manage the coverage ratchet", description="Manage the coverage ratchet."
    )
    actions = baseline.add_subparsers(dest="action", metavar="ACTION", required=True)
    update = actions.add_parser(
        "update",
        help="record the missing lines per file from the last coverage data",
        description="Write the per-file count of missing lines from the last coverage data "
        "(.coverage) to the baseline file. Tightening is always allowed; loosening (more "
        "missing lines in a file) needs --reason, which is kept in the file.",
    )
    update.add_argument("--reason", help="why the baseline may loosen (kept in its history)")
    update.add_argument("--data-file", type=Path, help="coverage data file (default: .coverage)")
    update.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: coverage costs ~100 ms, and every verb (a git hook too) loads this module.
    from pytest_worktree_gates import covfacts
    from pytest_worktree_gates.baseline import update_baseline

    context = here()
    root = context.config.root
    data_file = (args.data_file or root / ".coverage").resolve()
    if not data_file.is_file():
        raise GatesError(f"no coverage data at {data_file}; run `pytest --gates` first")
    facts = covfacts.load_facts(root, data_file)
    target = root / context.config.coverage.baseline
    change = update_baseline(target, facts, args.reason)
    if change.created:
        print(f"{target.name}: created for {len(facts.files)} files; commit it")
    else:
        print(
            f"{target.name}: {len(facts.files)} files; "
            f"{len(change.lowered)} tightened, {len(change.raised)} loosened"
        )
    return 0
