"""new, list, status, approve, request-changes and cleanup in real repos, through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from pytest_worktree_gates import git as git_module
from pytest_worktree_gates.worktrees import overview
from tests.conftest import commit_all, git
from tests.worktrees.helpers import Runner, change, db, head, make_project, snapshot, worktree


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("COVERAGE_FILE", raising=False)
    return make_project(tmp_path / "proj", gates='["unit", "final"]', approvals=1)


def test_new_creates_branch_worktree_registry_and_env_file(project: Path, wtg: Runner) -> None:
    code, out = wtg(project, "new", "login", "--description", "log in", "--variant", "hotfix")
    assert code == 0, out
    path = worktree(project, "login")
    assert git(path, "symbolic-ref", "HEAD").strip() == "refs/heads/feature/login"
    assert head(path) == head(project, "main")
    assert "/.worktrees/" in (project / ".git" / "info" / "exclude").read_text()
    env_file = path / ".env.worktree"
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert git(project, "status", "--porcelain") == ""  # the worktrees dir is excluded
    assert git(path, "status", "--porcelain") == ""  # and so is the env file
    code, out = wtg(project, "list", "--json")
    (row,) = json.loads(out)
    assert row["name"] == "login"
    assert (row["variant"], row["state"], row["dirty"]) == ("hotfix", "ready", False)
    assert row["description"] == "log in"
    assert (row["ahead"], row["behind"]) == (0, 0)
    assert row["gates"] == {"unit": "pending", "integration": "pending", "final": "pending"}


@pytest.mark.parametrize(
    "name", ["../escape", "-rf", "two words", "Upper", "x.lock", "a..b", "dot.", "a/b", "é"]
)
def test_new_refuses_bad_names_and_changes_nothing(project: Path, wtg: Runner, name: str) -> None:
    before = snapshot(project)
    code, out = wtg(project, "new", name)
    assert code == 2
    if not name.startswith("-"):  # argparse itself refuses an option-looking NAME
        assert out.count("\n") == 1 and "invalid worktree name" in out
    assert snapshot(project) == before
    assert not (project / ".worktrees").exists()


def test_new_refuses_names_that_exist(project: Path, wtg: Runner) -> None:
    git(project, "branch", "feature/taken")
    (project / ".worktrees" / "present").mkdir(parents=True)
    assert wtg(project, "new", "ok", "--no-db")[0] == 0
    before = snapshot(project)
    for name, message in [
        ("taken", "branch feature/taken already exists"),
        ("present", "already exists"),
        ("ok", "already exists"),
    ]:
        code, out = wtg(project, "new", name)
        assert code == 2 and message in out, out
    assert snapshot(project) == before


def test_new_refuses_a_bad_base_or_variant(project: Path, wtg: Runner) -> None:
    before = snapshot(project)
    code, out = wtg(project, "new", "x", "--base", "nope")
    assert code == 2 and "base 'nope'" in out
    code, out = wtg(project, "new", "x", "--variant", "weird")
    assert code == 2 and "unknown variant 'weird'" in out
    assert snapshot(project) == before


def test_an_interrupted_new_leaves_nothing_blocking(project: Path, wtg: Runner) -> None:
    connection = db(project)
    with connection:
        connection.execute(
            "INSERT INTO worktrees VALUES ('half', 'feature/half', 'p', 'g', 'standard', '',"
            " 'creating', 0)"
        )
    connection.close()
    assert wtg(project, "new", "half")[0] == 0


def test_setup_commands_run_with_progress_and_a_failure_keeps_the_worktree(
    project: Path, wtg: Runner
) -> None:
    with (project / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.worktree-gates.worktree]\nsetup = ["echo ready > made.txt"]\n')
    commit_all(project, "setup")
    code, out = wtg(project, "new", "good")
    assert code == 0, out
    assert "setup 1/1: echo ready > made.txt" in out
    assert (worktree(project, "good") / "made.txt").read_text() == "ready\n"

    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml")
        .read_text()
        .replace('"echo ready > made.txt"', '"echo building", "echo broken >&2; exit 3"')
    )
    commit_all(project, "broken setup")
    code, out = wtg(project, "new", "bad")
    assert code == 2
    assert "setup command failed (exit 3): echo broken >&2; exit 3" in out
    assert "broken" in out and "kept at" in out
    assert worktree(project, "bad").is_dir()
    code, out = wtg(project, "list", "--json")
    assert {row["name"]: row["state"] for row in json.loads(out)}["bad"] == "failed"


def test_status_shows_the_pipeline_and_what_to_do_next(project: Path, wtg: Runner) -> None:
    wtg(project, "new", "feat", "--no-db")
    path = worktree(project, "feat")
    code, out = wtg(project, "status", "feat", "--json")
    data = json.loads(out)
    assert data["next"] == "worktree-gates gate run unit"
    change(path, "notes.txt", "v1\n")
    code, out = wtg(path, "gate", "run", "unit")
    assert code == 0, out
    code, out = wtg(project, "status", "feat")
    assert "[x]    5 unit gate (passed)" in out
    assert "next: worktree-gates approve feat --by WHO" in out
    (path / "wip.txt").write_text("wip")
    code, out = wtg(project, "status", "feat")
    assert "next: commit your changes" in out
    code, out = wtg(path, "status")  # without NAME: the gates of the current tree, as before
    assert "uncommitted changes" in out


def test_reviews_are_bound_to_the_tree(project: Path, wtg: Runner) -> None:
    wtg(project, "new", "rev", "--no-db")
    path = worktree(project, "rev")
    change(path, "notes.txt", "v1\n")
    assert wtg(project, "approve", "rev", "--by", "alice", "--note", "lgtm")[0] == 0
    code, out = wtg(project, "status", "rev", "--json")
    assert json.loads(out)["review"]["approvers"] == ["alice"]
    change(path, "notes.txt", "v2\n")
    code, out = wtg(project, "status", "rev", "--json")
    review = json.loads(out)["review"]
    assert (review["approvers"], review["stale"]) == ([], 1)
    code, out = wtg(project, "request-changes", "rev", "--by", "bob", "--note", "rename X")
    assert code == 0
    wtg(project, "approve", "rev", "--by", "alice")
    code, out = wtg(project, "merge", "rev")
    assert code == 2 and "changes requested by bob" in out


def test_review_bad_input(project: Path, wtg: Runner) -> None:
    code, out = wtg(project, "approve", "ghost", "--by", "a")
    assert code == 2 and "unknown worktree 'ghost'" in out
    wtg(project, "new", "rev", "--no-db")
    (worktree(project, "rev") / "wip.txt").write_text("wip")
    code, out = wtg(project, "approve", "rev", "--by", "a")
    assert code == 2 and "uncommitted changes" in out
    code, out = wtg(project, "approve", "rev", "--by", " ")
    assert code == 2 and "--by must name" in out
    code, out = wtg(project, "request-changes", "rev", "--by", "a", "--note", "")
    assert code == 2 and "--note must say" in out


def test_cleanup_refuses_to_lose_work_and_force_backs_it_up(project: Path, wtg: Runner) -> None:
    wtg(project, "new", "work", "--no-db")
    path = worktree(project, "work")
    committed = change(path, "notes.txt", "v1\n")
    (path / "untracked.txt").write_text("precious")
    before = snapshot(project)
    code, out = wtg(project, "cleanup", "work")
    assert code == 2
    assert "1 uncommitted change(s)" in out and "1 commit(s) not on main" in out
    assert snapshot(project) == before and (path / "untracked.txt").exists()

    code, out = wtg(project, "cleanup", "work", "--force")
    assert code == 0, out
    assert not path.exists()
    backup = "refs/worktree-gates/backup/work"
    assert git(project, "show", f"{backup}:untracked.txt") == "precious"
    assert git(project, "rev-parse", f"{backup}^").strip() == committed
    assert "restore it with" in out
    assert "kept branch feature/work" in out  # unmerged: the branch stays too
    assert wtg(project, "list", "--json")[1].strip() == "[]"


def test_cleanup_of_a_merged_worktree_deletes_the_branch(project: Path, wtg: Runner) -> None:
    wtg(project, "new", "done", "--no-db")
    code, out = wtg(project, "cleanup", "done")
    assert code == 0, out
    assert "deleted branch feature/done" in out
    assert git(project, "branch", "--list", "feature/done") == ""


def test_cleanup_from_inside_the_worktree_is_refused(project: Path, wtg: Runner) -> None:
    wtg(project, "new", "here", "--no-db")
    code, out = wtg(worktree(project, "here") / "pkg", "cleanup", "here")
    assert code == 2 and "you are inside worktree here" in out
    assert worktree(project, "here").is_dir()


def test_a_worktree_deleted_by_hand(project: Path, wtg: Runner) -> None:
    wtg(project, "new", "gone", "--no-db")
    shutil.rmtree(worktree(project, "gone"))
    code, out = wtg(project, "list")
    assert "missing" in out
    code, out = wtg(project, "merge", "gone")
    assert code == 2 and "is missing (deleted by hand?)" in out
    code, out = wtg(project, "status", "gone")
    assert "missing (deleted by hand?)" in out
    code, out = wtg(project, "cleanup", "gone")
    assert code == 0, out
    assert "was already gone" in out
    assert "gone" not in git(project, "worktree", "list")


def test_unknown_names(project: Path, wtg: Runner) -> None:
    for verb in ("merge", "cleanup", "status"):
        code, out = wtg(project, verb, "nobody")
        assert code == 2 and "unknown worktree 'nobody'" in out


def test_cleanup_without_main(project: Path, wtg: Runner) -> None:
    wtg(project, "new", "orphan", "--no-db")
    git(project, "branch", "-m", "main", "trunk")
    before = snapshot(project)
    code, out = wtg(project, "cleanup", "orphan")
    assert code == 2 and "the main branch 'main' does not exist" in out
    assert snapshot(project) == before
    code, out = wtg(project, "cleanup", "orphan", "--force")
    assert code == 0, out
    assert git(project, "rev-parse", "refs/worktree-gates/backup/orphan").strip()


def test_list_is_fast_with_twenty_worktrees(project: Path, wtg: Runner) -> None:
    for number in range(20):
        git(project, "worktree", "add", "-q", "-b", f"feature/w{number}",
            str(worktree(project, f"w{number}")))  # fmt: skip
    connection = db(project)
    with connection:
        for number in range(20):
            path = worktree(project, f"w{number}")
            git_dir = project / ".git" / "worktrees" / f"w{number}"
            connection.execute(
                "INSERT INTO worktrees VALUES (?, ?, ?, ?, 'standard', '', 'ready', 0)",
                (f"w{number}", f"feature/w{number}", str(path), str(git_dir)),
            )
    connection.close()
    repo = git_module.find_repo(project)
    assert repo is not None
    from pytest_worktree_gates import config

    started = time.perf_counter()
    rows = overview.collect(repo, config.load(project))
    took = time.perf_counter() - started
    assert len(rows) == 20
    # The CLI adds interpreter start-up; bench/workflow.py measures that end to end.
    limit = 0.5 if not os.environ.get("COVERAGE_RUN") else 1.0
    assert took < limit * (3 if "COV_CORE_SOURCE" in os.environ else 1), took
