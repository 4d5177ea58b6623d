"""`merge`: main moves only by fast-forward to a tree that passed the final gate, in real repos."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git
from tests.worktrees.helpers import (
    Runner,
    change,
    final_passed,
    head,
    main_history_passed_final,
    make_project,
    merged_by_us,
    new,
    snapshot,
)

FAILING = "def test_add():\n    assert False\n"


def test_merge_fast_forwards_main_to_the_tested_commit(project: Path, wtg: Runner) -> None:
    path = new(wtg, project, "feat")
    tip = change(path, "more.txt", "Y = 2\n")
    code, out = wtg(project, "merge", "feat")
    assert code == 0, out
    assert head(project, "main") == tip  # a fast-forward: no merge commit needed
    assert (project / "more.txt").read_text() == "Y = 2\n"  # main's checkout updated
    assert final_passed(project, head(project, "main^{tree}"))
    assert not path.exists() and "deleted branch feature/feat" in out
    assert main_history_passed_final(project) == []


def test_merge_brings_main_in_and_resolves_safe_conflicts(project: Path, wtg: Runner) -> None:
    path = new(wtg, project, "feat")
    code = "\n\ndef add(a, b):\n    return a + b\n"
    change(path, "pkg/__init__.py", "import os\nimport sys\n" + code)
    change(project, "pkg/__init__.py", "import os\nimport json\n" + code)
    before = head(project, "main")
    code, out = wtg(project, "merge", "feat", "--keep")
    assert code == 0, out
    assert "resolved pkg/__init__.py automatically" in out
    assert git(project, "show", "main:pkg/__init__.py").startswith(
        "import json\nimport os\nimport sys\n"
    )
    assert head(project, "main^1") != before and head(project, "main^2") == before
    assert head(project, "main") == head(path)  # main is exactly the tested commit
    assert main_history_passed_final(project) == []
    assert "rerere.enabled=true" in git(project, "config", "--list")


def test_real_conflicts_stop_the_merge_then_continue(project: Path, wtg: Runner) -> None:
    path = new(wtg, project, "feat")
    change(path, "notes.txt", "feature\n")
    change(project, "notes.txt", "main\n")
    main_before = head(project, "main")
    code, out = wtg(project, "merge", "feat")
    assert code == 3
    assert "notes.txt: conflict markers at line 1, 5" in out
    assert "worktree-gates merge feat --continue" in out
    assert head(project, "main") == main_before
    assert git(path, "rev-parse", "-q", "--verify", "MERGE_HEAD").strip()

    code, out = wtg(project, "merge", "feat")
    assert code == 2 and "in the middle of a merge" in out
    code, out = wtg(project, "merge", "feat", "--continue")
    assert code == 2 and "notes.txt still has conflict markers" in out
    (path / "notes.txt").write_text("feature and main\n")
    code, out = wtg(project, "merge", "feat", "--continue", "--keep")
    assert code == 0, out
    assert git(project, "show", "main:notes.txt") == "feature and main\n"
    assert main_history_passed_final(project) == []


def test_committed_conflict_markers_are_refused(project: Path, wtg: Runner) -> None:
    path = new(wtg, project, "feat")
    change(path, "notes.txt", "<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> main\n")
    before = head(project, "main")
    code, out = wtg(project, "merge", "feat")
    assert code == 2 and "conflict markers in notes.txt" in out
    assert head(project, "main") == before


def test_a_failing_final_gate_leaves_main_untouched(project: Path, wtg: Runner) -> None:
    path = new(wtg, project, "feat")
    change(path, "tests/test_pkg.py", FAILING)
    before = head(project, "main")
    code, out = wtg(project, "merge", "feat")
    assert code == 1
    assert "final gate did not pass" in out and "main is untouched" in out
    assert head(project, "main") == before
    assert path.is_dir()


def test_not_ready_lists_pending_gates_and_commands(tmp_path: Path, wtg: Runner) -> None:
    project = make_project(tmp_path / "strict", gates='["unit", "integration", "final"]')
    path = new(wtg, project, "feat")
    change(path, "notes.txt", "x\n")
    before = snapshot(project)
    code, out = wtg(project, "merge", "feat")
    assert code == 2
    assert "gate unit is pending: run `worktree-gates gate run unit`" in out
    assert "gate integration is pending" in out
    assert snapshot(project) == before


def test_merge_bad_input_changes_nothing(project: Path, wtg: Runner) -> None:
    path = new(wtg, project, "feat")
    change(path, "notes.txt", "x\n")
    (path / "notes.txt").write_text("dirty\n")
    before = snapshot(project)
    code, out = wtg(project, "merge", "feat")
    assert code == 2 and "uncommitted changes (notes.txt)" in out
    assert (path / "notes.txt").read_text() == "dirty\n"
    git(path, "checkout", "--", "notes.txt")

    git(path, "checkout", "-q", "--detach")
    code, out = wtg(project, "merge", "feat")
    assert code == 2 and "detached HEAD" in out
    git(path, "checkout", "-q", "feature/feat")

    git(project, "branch", "-m", "main", "trunk")
    code, out = wtg(project, "merge", "feat")
    assert code == 2 and "the main branch 'main' does not exist" in out
    git(project, "branch", "-m", "trunk", "main")
    assert snapshot(project) == before


def test_main_checked_out_with_local_changes_moves_only_the_ref(project: Path, wtg: Runner) -> None:
    path = new(wtg, project, "feat")
    tip = change(path, "more.txt", "Y = 2\n")
    (project / "notes.txt").write_text("local\n")
    git(project, "add", "notes.txt")
    code, out = wtg(project, "merge", "feat")
    assert code == 0, out
    assert "moved the ref only" in out and "git read-tree -m -u" in out
    assert head(project, "main") == tip
    assert (project / "notes.txt").read_text() == "local\n"


def test_merge_status_json_after_merge_shows_done(project: Path, wtg: Runner) -> None:
    path = new(wtg, project, "feat")
    change(path, "notes.txt", "x\n")
    assert wtg(project, "merge", "feat", "--keep")[0] == 0
    _code, out = wtg(project, "status", "feat", "--json")
    data = json.loads(out)
    assert data["state"] == "merged"
    assert data["next"] == "worktree-gates cleanup feat"


def test_a_merge_train_of_ten(project: Path, wtg: Runner) -> None:
    paths = [new(wtg, project, f"t{number}") for number in range(10)]
    for number, path in enumerate(paths):
        change(path, f"docs/m{number}.txt", f"V = {number}\n")
    for number in range(10):
        code, out = wtg(project, "merge", f"t{number}")
        assert code == 0, out
    assert len(merged_by_us(project)) == 10
    assert main_history_passed_final(project) == []
    for number in range(10):
        assert (project / "docs" / f"m{number}.txt").is_file()
