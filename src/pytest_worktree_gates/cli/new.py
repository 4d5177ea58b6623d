"""``worktree-gates new NAME``: a worktree with its own branch, ports, databases and setup."""

from __future__ import annotations

import argparse
import time
from typing import Any

from pytest_worktree_gates.cli.context import here
from pytest_worktree_gates.worktrees import new


def add_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "new",
        help="create a worktree for a feature, with its own ports and databases",
        description="Create branch PREFIX+NAME from --base in WORKTREES-DIR/NAME, register it, "
        "lease its ports, start its databases (unless --no-db), write its .env.worktree and run "
        "the [tool.worktree-gates.worktree] setup commands.",
    )
    parser.add_argument("name", metavar="NAME", help="a slug: lowercase letters, digits, . _ -")
    parser.add_argument("--base", help="branch or commit to start from (default: main)")
    parser.add_argument("--variant", help="standard, full, hotfix or a configured one")
    parser.add_argument("--description", default="", help="what the feature is for")
    parser.add_argument("--no-db", action="store_true", help="lease ports but start no database")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    context = here()
    started = time.perf_counter()
    request = new.Request(
        name=args.name,
        base=args.base or context.config.main_branch,
        variant=args.variant or context.config.variant,
        description=args.description,
        databases=not args.no_db,
    )
    item = new.create(context.repo, context.config, request)
    took = time.perf_counter() - started
    print(f"created worktree {item.name} ({item.variant}) at {item.path} on branch {item.branch}")
    print(f"  environment: {item.path / new.ENV_FILE}  ({took:.2f}s)")
    print(f"next: cd {item.path}, implement, commit; then `worktree-gates status {item.name}`")
    return 0
