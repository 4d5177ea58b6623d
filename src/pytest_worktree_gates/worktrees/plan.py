"""Pure decisions of the workflow: gate states, review outcome, whether a merge may start.

Facts in, verdicts out; ``list``, ``status`` and ``merge`` all decide with these, so what
``status`` promises is what ``merge`` checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pytest_worktree_gates.config import Variant
from pytest_worktree_gates.worktrees.registry import Review

APPROVED, CHANGES = "approved", "changes-requested"
ARCHITECTURE = "architecture-note"


def gate_state(verdict_passed: bool | None, ran_before: bool) -> str:
    """passed / failed for the current tree, else stale (ran on another tree) or pending."""
    if verdict_passed is not None:
        return "passed" if verdict_passed else "failed"
    return "stale" if ran_before else "pending"


@dataclass(frozen=True)
class ReviewOutcome:
    approvers: tuple[str, ...]  # distinct, whose latest word on this tree is "approved"
    requesters: tuple[str, ...]  # whose latest word on this tree is "changes requested"
    stale: int  # approvals given to earlier trees
    architecture_note: bool


def review_outcome(reviews: Iterable[Review], trees: Sequence[str]) -> ReviewOutcome:
    """Each reviewer's latest verdict on one of ``trees`` (the current tree, its reviewed one)."""
    latest: dict[str, str] = {}
    stale = 0
    note = False
    for item in reviews:
        if item.verdict == ARCHITECTURE:
            note = True
        elif item.tree in trees:
            latest[item.by] = item.verdict
        elif item.verdict == APPROVED:
            stale += 1
    approvers = tuple(sorted(by for by, verdict in latest.items() if verdict == APPROVED))
    requesters = tuple(sorted(by for by, verdict in latest.items() if verdict == CHANGES))
    return ReviewOutcome(approvers, requesters, stale, note)


def blockers(
    name: str, variant: Variant, gates: Mapping[str, str], review: ReviewOutcome
) -> list[str]:
    """Why ``name`` may not be merged yet, each with the command that fixes it; [] when ready.

    The final gate is not asked for: ``merge`` runs it itself, on the merged tree.
    """
    found = []
    for gate in variant.gates:
        if gate == "final":
            continue
        current = gates.get(gate, "pending")
        if current != "passed":
            found.append(
                f"gate {gate} is {current}: run `worktree-gates gate run {gate}` in the worktree"
            )
    if review.requesters:
        found.append(
            f"changes requested by {', '.join(review.requesters)}: push a fix, then ask for "
            f"`worktree-gates approve {name} --by WHO`"
        )
    if len(review.approvers) < variant.approvals:
        stale = f" ({review.stale} stale, given to an earlier tree)" if review.stale else ""
        found.append(
            f"review: {len(review.approvers)} of {variant.approvals} approvals for this "
            f"tree{stale}: `worktree-gates approve {name} --by WHO`"
        )
    if variant.architecture_note and not review.architecture_note:
        found.append(
            f"the {variant.name} variant needs an architecture note: "
            f"`worktree-gates approve {name} --by WHO --architecture-note TEXT`"
        )
    return found


@dataclass(frozen=True)
class Step:
    number: str  # the step of the 13-step workflow
    title: str
    state: str  # done | todo | waiting | skipped
    command: str  # what to run to get it done ("" when done)


def pipeline(
    name: str,
    variant: Variant,
    gates: Mapping[str, str],
    review: ReviewOutcome,
    *,
    dirty: bool,
    behind: int,
    merging: bool,
    merged: bool,
) -> list[Step]:
    """The workflow of one worktree, step by step; the first step not done is what to do next."""

    def gate_step(number: str, gate: str) -> Step:
        if gate not in variant.gates:
            return Step(number, f"{gate} gate", "skipped", "")
        current = gates.get(gate, "pending")
        done = current == "passed" or merged
        return Step(number, f"{gate} gate ({current})", "done" if done else "todo",
                    "" if done else f"worktree-gates gate run {gate}")  # fmt: skip

    approvals = f"{len(review.approvers)}/{variant.approvals} approvals"
    reviewed = merged or (len(review.approvers) >= variant.approvals and not review.requesters)
    steps = [
        Step("1", "create worktree", "done", ""),
        Step("2-4", "implement, test, commit", "todo" if dirty else "done",
             "commit your changes" if dirty else ""),
        gate_step("5", "unit"),
        Step("6", f"review ({approvals})", "done" if reviewed else "todo",
             "" if reviewed else f"worktree-gates approve {name} --by WHO"),
    ]  # fmt: skip
    if variant.architecture_note:
        done = review.architecture_note or merged
        steps.append(Step("6", "architecture note", "done" if done else "todo",
                          "" if done else f"worktree-gates approve {name} --by WHO "
                          "--architecture-note TEXT"))  # fmt: skip
    steps.append(gate_step("8", "integration"))
    if merging:
        conflicts = Step("10", "conflicts: mid-merge", "todo",
                         f"resolve, then worktree-gates merge {name} --continue")  # fmt: skip
    else:
        what = f"main is {behind} commit(s) ahead" if behind else "up to date with main"
        conflicts = Step("10", f"conflicts ({what})", "done" if merged else "waiting", "")
    steps += [
        conflicts,
        Step("11", "final gate on the merged tree", "done" if merged else "waiting", ""),
        Step("12", "merge to main", "done" if merged else "todo",
             "" if merged else f"worktree-gates merge {name}"),
        Step("13", "cleanup", "todo" if merged else "waiting",
             f"worktree-gates cleanup {name}" if merged else ""),
    ]  # fmt: skip
    return steps


def next_step(steps: Sequence[Step]) -> Step | None:
    return next((step for step in steps if step.state == "todo"), None)
