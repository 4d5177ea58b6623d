"""``worktree-gates gate run GATE``: run a gate through pytest unless the ledger vouches for it."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_worktree_gates.cli.context import here
from pytest_worktree_gates.gates.runner import run_gate


def add_parser(verbs: Any) -> None:
    gate = verbs.add_parser("gate", help="run a gate", description="Run a gate.")
    actions = gate.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_parser = actions.add_parser(
        "run",
        help="run GATE via `pytest --gates=GATE`, skipped if it already passed for this tree",
        usage="worktree-gates gate run [--rerun] GATE [-- PYTEST_ARGS...]",
        description="Run GATE through pytest. A gate that already passed for the current clean "
        "tree and configuration is not run again unless --rerun is given. Arguments after "
        "`--` go to pytest.",
    )
    run_parser.add_argument("gate", metavar="GATE")
    run_parser.add_argument("--rerun", action="store_true", help="run even if it already passed")
    run_parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    context = here()
    outcome = run_gate(
        context.config, context.repo, args.gate, rerun=args.rerun, pytest_args=args.pytest_args
    )
    if outcome.from_ledger:
        tree = (outcome.tree or "")[:12]
        print(f"gate {args.gate}: already passed for tree {tree} (--rerun to run again)")
    return outcome.exit_code
