"""The workflow's pure decisions: gate states, review outcome, merge blockers, the pipeline."""

from __future__ import annotations

from pytest_worktree_gates.config import DEFAULT_VARIANTS
from pytest_worktree_gates.worktrees import plan
from pytest_worktree_gates.worktrees.registry import Review

FULL, HOTFIX, STANDARD = (DEFAULT_VARIANTS[name] for name in ("full", "hotfix", "standard"))
PASSED = {"unit": "passed", "integration": "passed", "final": "pending"}


def review(by: str, tree: str, verdict: str = plan.APPROVED) -> Review:
    return Review(by, tree, "", verdict, 0.0)


def test_gate_state() -> None:
    assert plan.gate_state(True, True) == "passed"
    assert plan.gate_state(False, True) == "failed"
    assert plan.gate_state(None, True) == "stale"
    assert plan.gate_state(None, False) == "pending"


def test_review_outcome_counts_each_reviewers_latest_word_on_the_tree() -> None:
    reviews = [
        review("alice", "t1"),
        review("bob", "t2"),
        review("bob", "t2", plan.CHANGES),
        review("carol", "t0"),
        review("alice", "t2"),
        review("dan", "t9", plan.ARCHITECTURE),
    ]
    outcome = plan.review_outcome(reviews, ["t2"])
    assert outcome.approvers == ("alice",)
    assert outcome.requesters == ("bob",)
    assert outcome.stale == 2  # alice on t1 and carol on t0
    assert outcome.architecture_note


def test_blockers_of_a_ready_worktree() -> None:
    outcome = plan.review_outcome([review("alice", "t")], ["t"])
    assert plan.blockers("x", STANDARD, PASSED, outcome) == []
    assert plan.blockers("x", HOTFIX, {"unit": "passed"}, outcome) == []


def test_blockers_name_each_missing_thing_and_its_command() -> None:
    outcome = plan.review_outcome([review("bob", "t", plan.CHANGES), review("carol", "old")], ["t"])
    found = plan.blockers("x", FULL, {"unit": "stale", "integration": "failed"}, outcome)
    assert found == [
        "gate unit is stale: run `worktree-gates gate run unit` in the worktree",
        "gate integration is failed: run `worktree-gates gate run integration` in the worktree",
        "changes requested by bob: push a fix, then ask for `worktree-gates approve x --by WHO`",
        "review: 0 of 1 approvals for this tree (1 stale, given to an earlier tree): "
        "`worktree-gates approve x --by WHO`",
        "the full variant needs an architecture note: "
        "`worktree-gates approve x --by WHO --architecture-note TEXT`",
    ]


def test_pipeline_of_a_new_worktree() -> None:
    outcome = plan.review_outcome([], [])
    steps = plan.pipeline("x", FULL, {}, outcome, dirty=True, behind=2, merging=False, merged=False)
    assert [step.number for step in steps] == [
        "1",
        "2-4",
        "5",
        "6",
        "6",
        "8",
        "10",
        "11",
        "12",
        "13",
    ]
    upcoming = plan.next_step(steps)
    assert upcoming is not None and upcoming.command == "commit your changes"
    assert "main is 2 commit(s) ahead" in steps[6].title


def test_pipeline_mid_merge_and_after_merge() -> None:
    outcome = plan.review_outcome([review("a", "t")], ["t"])
    steps = plan.pipeline(
        "x", HOTFIX, PASSED, outcome, dirty=False, behind=0, merging=True, merged=False
    )
    assert [s.state for s in steps if s.title == "integration gate"] == ["skipped"]
    upcoming = plan.next_step(steps)
    assert upcoming is not None
    assert upcoming.command == "resolve, then worktree-gates merge x --continue"
    merged = plan.pipeline(
        "x", STANDARD, {}, outcome, dirty=False, behind=0, merging=False, merged=True
    )
    last = plan.next_step(merged)
    assert last is not None and last.command == "worktree-gates cleanup x"
