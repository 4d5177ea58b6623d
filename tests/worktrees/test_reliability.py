"""Crashes and races in `merge`: kill -9 at every stage, concurrent merges, main moving mid-gate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_worktree_gates import faults
from tests.conftest import git
from tests.worktrees.helpers import (
    Runner,
    change,
    final_passed,
    head,
    main_history_passed_final,
    merged_by_us,
    new,
    spawn,
)

STAGES = ("locked", "merge-committed", "merged", "tested", "main-moved", "recorded")


@pytest.mark.parametrize("stage", STAGES)
def test_kill_9_at_each_stage_leaves_main_safe_and_a_rerun_completes(
    project: Path, wtg: Runner, stage: str
) -> None:
    path = new(wtg, project, "feat")
    change(path, "feature.txt", "feature\n")
    change(project, "main.txt", "main\n")  # main moved: the merge needs a merge commit
    before = head(project, "main")
    crashed = spawn(project, "merge", "feat", env={**os.environ, faults.VARIABLE: stage})
    output, _ = crashed.communicate(timeout=120)
    assert crashed.returncode == -9, output
    if stage in ("main-moved", "recorded"):
        assert head(project, "main") == head(path)  # the swap happened, to the tested commit
    else:
        assert head(project, "main") == before
    assert (
        main_history_passed_final(project) == []
        if stage in ("main-moved", "recorded")
        else (merged_by_us(project) == [])
    )

    code, out = wtg(project, "merge", "feat")  # no stale lock, no half-merge blocks this
    assert code == 0, out
    assert git(project, "show", "main:feature.txt") == "feature\n"
    assert git(project, "show", "main:main.txt") == "main\n"
    assert main_history_passed_final(project) == []
    assert (project / "feature.txt").read_text() == "feature\n"  # the checkout caught up
    assert git(project, "status", "--porcelain") == ""


def test_two_concurrent_merges_land_one_after_the_other(project: Path, wtg: Runner) -> None:
    first, second = new(wtg, project, "one"), new(wtg, project, "two")
    change(first, "one.txt", "1\n")
    change(second, "two.txt", "2\n")
    runs = [spawn(project, "merge", name) for name in ("one", "two")]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    landed = merged_by_us(project)
    assert len(landed) == 2
    newest, oldest = landed
    # The second merge was tested on top of the first: its commit contains the first.
    assert git(project, "merge-base", "--is-ancestor", oldest, newest) == ""
    assert final_passed(project, head(project, f"{newest}^{{tree}}"))
    assert git(project, "show", "main:one.txt") == "1\n"
    assert git(project, "show", "main:two.txt") == "2\n"


MOVES_MAIN = """\
import os
import subprocess
from pathlib import Path


def test_main_moves_during_the_first_final_gate():
    primary = os.environ.get("WTG_MOVE_MAIN")
    if primary and not Path(primary, "moved.txt").exists():
        Path(primary, "moved.txt").write_text("moved\\n")
        subprocess.run(["git", "add", "moved.txt"], cwd=primary, check=True)
        subprocess.run(["git", "commit", "-qm", "moved"], cwd=primary, check=True)
"""


def test_main_moving_during_the_final_gate_merges_again(
    project: Path, wtg: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = new(wtg, project, "feat")
    change(path, "tests/test_moves.py", MOVES_MAIN)
    monkeypatch.setenv("WTG_MOVE_MAIN", str(project))
    code, out = wtg(project, "merge", "feat")
    assert code == 0, out
    assert "moved while the final gate ran; merging it in again" in out
    assert git(project, "show", "main:moved.txt") == "moved\n"
    assert main_history_passed_final(project) == []


def test_kill_9_after_the_worktree_is_added_is_undone_by_cleanup(
    project: Path, wtg: Runner
) -> None:
    env = {**os.environ, faults.VARIABLE: "worktree-added"}
    crashed = spawn(project, "new", "feat", "--no-db", env=env)
    output, _ = crashed.communicate(timeout=120)
    assert crashed.returncode == -9, output  # the kill happened, after `git worktree add`
    assert (project / ".worktrees" / "feat").is_dir()

    code, out = wtg(project, "cleanup", "feat")  # the half-made worktree is not stuck
    assert code == 0, out
    code, out = wtg(project, "new", "feat", "--no-db")
    assert code == 0, out
