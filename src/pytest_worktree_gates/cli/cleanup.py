"""``worktree-gates cleanup NAME``: databases, ports, worktree and merged branch, losing nothing."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_worktree_gates.cli.context import here
from pytest_worktree_gates.worktrees import cleanup


def add_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "cleanup",
        help="remove a worktree, its databases and ports, and its branch once merged",
        description="Stop and remove NAME's databases, release its ports, remove the worktree "
        "and delete its branch if main has it. Refuses uncommitted changes or commits not on "
        "main unless --force, which first saves them to refs/worktree-gates/backup/NAME.",
    )
    parser.add_argument("name", metavar="NAME")
    parser.add_argument(
        "--force", action="store_true", help="remove unmerged work too (after a backup ref)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    context = here()
    for line in cleanup.cleanup(
        context.repo, context.config, args.name, force=args.force, cwd=Path.cwd()
    ):
        print(line)
    print(f"cleaned up {args.name}")
    return 0
