"""``worktree-gates status [NAME]``: the gates of the current tree, or one worktree's pipeline."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from pytest_worktree_gates import git, state
from pytest_worktree_gates.cli.context import Context, here
from pytest_worktree_gates.worktrees import overview, plan, registry


def add_parser(verbs: Any) -> None:
    status = verbs.add_parser(
        "status",
        help="show the gates of the current tree, or worktree NAME's workflow pipeline",
        description="Without NAME: show, for each configured gate, whether it passed or failed "
        "for the current tree (from the ledger), is stale (last run on another tree or "
        "configuration) or is pending (never run in this worktree). With NAME: show that "
        "worktree's workflow step by step, with what to do next. Runs no tests.",
    )
    status.add_argument("name", metavar="NAME", nargs="?", help="a worktree made by `new`")
    status.add_argument("--json", action="store_true", help="one JSON report per gate")
    status.set_defaults(run=run)


@dataclass(frozen=True)
class GateState:
    gate: str
    state: str  # passed | failed | stale | pending
    report: dict[str, Any] | None

    def to_json(self, tree: str | None) -> dict[str, Any]:
        if self.report is not None and self.state in ("passed", "failed"):
            return {**self.report, "state": self.state}
        return {"gate": self.gate, "state": self.state, "passed": False, "tree": tree}


def gate_states(context: Context, tree: str | None) -> list[GateState]:
    worktree = str(context.repo.git_dir)
    key = context.config.digest()
    states = []
    with state.connect(context.repo.state_dir) as connection:
        for name in context.config.gates:
            verdict = state.lookup(connection, name, tree, key) if tree else None
            if verdict is not None:
                states.append(
                    GateState(name, "passed" if verdict.passed else "failed", verdict.report)
                )
            elif state.latest(connection, name, worktree) is not None:
                states.append(GateState(name, "stale", None))
            else:
                states.append(GateState(name, "pending", None))
    return states


def run(args: argparse.Namespace) -> int:
    context = here()
    if args.name:
        return pipeline(context, args.name, args.json)
    tree = git.clean_tree(context.repo.root)
    states = gate_states(context, tree)
    if args.json:
        print(json.dumps([item.to_json(tree) for item in states], indent=2))
        return 0
    shown = f"tree {tree[:12]}" if tree else "uncommitted changes (no verdict can be recorded)"
    print(f"{context.repo.root}: {shown}")
    width = max(len(item.gate) for item in states)
    for item in states:
        hint = "" if item.state == "passed" else f"  -> worktree-gates gate run {item.gate}"
        print(f"  {item.gate.ljust(width)}  {item.state}{hint}")
    return 0


def pipeline(context: Context, name: str, as_json: bool) -> int:
    with state.connect(context.repo.state_dir) as db:
        registry.get(db, name)  # an unknown name is one clear error
    (row,) = overview.collect(context.repo, context.config, [name])
    steps = overview.steps(row, context.config)
    upcoming = plan.next_step(steps)
    if as_json:
        data = row.to_json()
        data["steps"] = [step.__dict__ for step in steps]
        data["next"] = upcoming.command if upcoming else ""
        print(json.dumps(data, indent=2))
        return 0
    where = "missing (deleted by hand?)" if row.state == "missing" else row.path
    print(f"{row.name}: {row.branch} ({row.variant}) at {where}")
    for step in steps:
        mark = {"done": "[x]", "todo": "[ ]", "waiting": "[.]", "skipped": "[-]"}[step.state]
        hint = f"  -> {step.command}" if step.command else ""
        print(f"  {mark} {step.number:>4} {step.title}{hint}")
    if upcoming:
        print(f"next: {upcoming.command}")
    return 0
