"""``approve`` and ``request-changes``: review verdicts bound to the worktree's exact tree."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_worktree_gates import git, state
from pytest_worktree_gates.cli.context import here
from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.worktrees import plan, registry


def add_parser(verbs: Any) -> None:
    approve = verbs.add_parser(
        "approve",
        help="approve a worktree's current tree (the review gate)",
        description="Record an approval of worktree NAME's current committed tree. A commit "
        "that changes the tree makes it stale.",
    )
    approve.add_argument("name", metavar="NAME")
    approve.add_argument("--by", required=True, metavar="WHO", help="the reviewer")
    approve.add_argument("--note", default="", help="a comment kept with the approval")
    approve.add_argument(
        "--architecture-note",
        metavar="TEXT",
        help="also record the architecture note the `full` variant asks for",
    )
    approve.set_defaults(run=run_approve)
    changes = verbs.add_parser(
        "request-changes",
        help="ask for changes to a worktree's current tree",
        description="Record that WHO wants changes to worktree NAME's current tree; it blocks "
        "`merge` until WHO approves a later tree.",
    )
    changes.add_argument("name", metavar="NAME")
    changes.add_argument("--by", required=True, metavar="WHO", help="the reviewer")
    changes.add_argument("--note", required=True, help="what should change")
    changes.set_defaults(run=run_request_changes)


def _record(args: argparse.Namespace, verdict: str) -> int:
    context = here()
    who = args.by.strip()
    if not who:
        raise GatesError("--by must name the reviewer, e.g. --by alice")
    with state.connect(context.repo.state_dir) as db:
        item = registry.get(db, args.name)
        if not item.path.is_dir():
            raise GatesError(
                f"worktree {item.name}: its directory {item.path} is missing; nothing to review"
            )
        tree = git.clean_tree(item.path)
        if tree is None:
            raise GatesError(
                f"worktree {item.name} has uncommitted changes; a review is bound to a committed "
                "tree: commit (or stash) them first"
            )
        registry.review(db, item.name, tree, who, args.note, verdict)
        note = getattr(args, "architecture_note", None)
        if note:
            registry.review(db, item.name, tree, who, note, plan.ARCHITECTURE)
    shown = "approved" if verdict == plan.APPROVED else "requested changes to"
    print(f"{who} {shown} {item.name} at tree {tree[:12]}")
    return 0


def run_approve(args: argparse.Namespace) -> int:
    return _record(args, plan.APPROVED)


def run_request_changes(args: argparse.Namespace) -> int:
    if not args.note.strip():
        raise GatesError("--note must say what should change")
    return _record(args, plan.CHANGES)
