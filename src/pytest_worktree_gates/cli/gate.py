"""``worktree-gates gate run GATE``: run a gate through pytest unless the ledger vouches for it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from pytest_worktree_gates import git, state
from pytest_worktree_gates.cli.context import here


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
    gate = context.config.gate(args.gate)
    tree = git.clean_tree(context.repo.root)
    if tree and not args.rerun:
        with state.connect(context.repo.state_dir) as connection:
            verdict = state.lookup(connection, gate.name, tree, context.config.digest())
        if verdict is not None and verdict.passed:
            print(f"gate {gate.name}: already passed for tree {tree[:12]} (--rerun to run again)")
            return 0
    command = [sys.executable, "-m", "pytest", f"--gates={gate.name}", *args.pytest_args]
    return subprocess.run(command, cwd=context.config.root, env=git.clean_env()).returncode
