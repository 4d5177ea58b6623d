"""``worktree-gates merge NAME``: the merge queue to main (exit 0 merged, 1 final gate failed,
2 not ready or bad input, 3 conflicts need a human)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_worktree_gates.cli.context import here
from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.worktrees import cleanup, merge


def add_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "merge",
        help="merge a worktree into main through the conflict and final gates",
        description="Under a repo-wide lock: check NAME is clean and its variant's gates and "
        "reviews passed for its current tree, merge main in (resolving only provably safe "
        "conflicts), run the final gate on the merged tree and fast-forward main to exactly "
        "that commit; then clean up unless --keep. Exit codes: 0 merged, 1 the final gate "
        "failed, 2 not ready or bad input, 3 conflicts need a human.",
    )
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--keep", action="store_true", help="keep the worktree after merging")
    parser.add_argument(
        "--continue",
        dest="resume",
        action="store_true",
        help="commit a conflict resolution you made by hand and go on",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    context = here()
    main = context.config.main_branch
    outcome = merge.merge(context.repo, args.name, main, resume=args.resume)
    if isinstance(outcome, int):
        return outcome
    print(f"merged {args.name}: {main} {outcome.before[:12]} -> {outcome.after[:12]}")
    print(f"  final gate passed on tree {outcome.tree[:12]}; {outcome.checkout_note}")
    if args.keep:
        return 0
    try:
        for line in cleanup.cleanup(
            context.repo, context.config, args.name, force=False, cwd=Path.cwd()
        ):
            print(f"  {line}")
    except GatesError as error:
        print(f"merge: kept the worktree: {error}", file=sys.stderr)
    return 0
