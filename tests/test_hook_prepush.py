"""The pre-push hook: pushed refs from stdin, checks on the pushed range, the unit gate."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pytest_worktree_gates import config, git, prepush, state
from pytest_worktree_gates.errors import GatesError
from tests.conftest import commit_all
from tests.conftest import git as run_git
from tests.hookrepos import LOGGING, PY, hook, hook_env, log_lines, make_repo, script

ZERO = "0" * 40


def _repo_with_push_check(tmp_path: Path, gate: str = "") -> Path:
    logged = script(tmp_path, "logged", LOGGING)
    body = '[tool.worktree-gates.checks]\npreset = "none"\n[tool.worktree-gates.checks.types]\n'
    body += f'run = {json.dumps(logged)}\nstage = "pre-push"\n'

    return make_repo(tmp_path / "repo", body + gate, {"a.py": "a = 1\n", "b.py": "b = 1\n"})


def _line(root: Path, remote: str = ZERO, ref: str = "refs/heads/main") -> str:
    head = run_git(root, "rev-parse", "HEAD").strip()
    return f"{ref} {head} {ref} {remote}\n"


def _pass_unit(root: Path) -> str:
    """Record a unit-gate pass for HEAD's tree, as `pytest --gates` would."""
    repo = git.find_repo(root)
    assert repo is not None
    tree = run_git(root, "rev-parse", "HEAD^{tree}").strip()
    report = {"gate": "unit", "passed": True, "exit_code": 0, "tree": tree, "conditions": []}
    with state.connect(repo.state_dir) as connection:
        state.record(connection, report, config.load(root).digest(), str(repo.git_dir))
    return tree


def test_checks_run_on_the_files_of_the_pushed_range(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    root = _repo_with_push_check(tmp_path)
    base = run_git(root, "rev-parse", "HEAD").strip()
    (root / "b.py").write_text("b = 2\n")
    (root / "c.py").write_text("c = 1\n")
    commit_all(root, "second")
    tree = _pass_unit(root)
    done = hook(root, "pre-push", log=log, stdin=_line(root, base))
    assert done.returncode == 0, done.stdout + done.stderr
    assert log_lines(log) == ["['b.py', 'c.py']"]
    assert f"gate unit: already passed for tree {tree[:12]}" in done.stdout


def test_a_new_branch_is_judged_by_the_commits_no_remote_has(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    root = _repo_with_push_check(tmp_path)
    done = hook(root, "pre-push", "--check", "types", log=log, stdin=_line(root))
    assert done.returncode == 0, done.stderr
    assert log_lines(log) == ["['a.py', 'b.py']"]  # the root commit: everything is new
    assert "gate unit" not in done.stdout


def _repo_with_unit_test(tmp_path: Path, assertion: str) -> Path:
    """A unit gate of the tests alone, and one committed test that asserts ``assertion``."""
    gate = "[tool.worktree-gates.gates.unit]\ncoverage = false\nchecks = []\n"
    root = _repo_with_push_check(tmp_path, gate)
    (root / "test_a.py").write_text(f"def test_a():\n    assert {assertion}\n")
    commit_all(root, "a test")
    return root


def test_the_unit_gate_runs_when_the_ledger_has_no_pass(tmp_path: Path) -> None:
    root = _repo_with_unit_test(tmp_path, "True")
    done = hook(root, "pre-push", "--gate", stdin=_line(root))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "running pytest --gates=unit" in done.stdout
    again = hook(root, "pre-push", "--gate", stdin=_line(root))
    assert "already passed for tree" in again.stdout


def test_a_failing_gate_blocks_the_push_and_says_how_to_rerun(tmp_path: Path) -> None:
    root = _repo_with_unit_test(tmp_path, "False")
    done = hook(root, "pre-push", "--gate", stdin=_line(root))
    assert done.returncode == 1
    assert "gate:unit: FAILED" in done.stdout
    assert "rerun it alone: worktree-gates gate run unit" in done.stdout


def test_a_tree_not_checked_out_here_is_not_pushed_unvouched(tmp_path: Path) -> None:
    root = _repo_with_push_check(tmp_path)
    run_git(root, "checkout", "-q", "-b", "other")
    (root / "a.py").write_text("a = 2\n")
    commit_all(root, "other")
    line = _line(root, ref="refs/heads/other")
    run_git(root, "checkout", "-q", "main")
    done = hook(root, "pre-push", "--gate", stdin=line)
    assert done.returncode == 1
    assert "is not checked out here; run `worktree-gates gate run unit` in its worktree" in (
        done.stdout
    )


def test_a_real_git_push_runs_the_hook(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    root = _repo_with_push_check(tmp_path)
    remote = tmp_path / "remote.git"
    run_git(tmp_path, "init", "-q", "--bare", str(remote))
    run_git(root, "remote", "add", "origin", str(remote))
    subprocess.run(
        [PY, "-m", "pytest_worktree_gates", "hooks", "install"],
        cwd=root,
        env=hook_env(),
        check=True,
    )
    _pass_unit(root)
    env = hook_env(log)
    done = subprocess.run(
        ["git", "push", "-q", "origin", "main"], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert log_lines(log) == ["['a.py', 'b.py']"]
    (root / "b.py").write_text("b = 3\n")
    run_git(root, "commit", "-q", "--no-verify", "-am", "third")
    _pass_unit(root)
    done = subprocess.run(
        ["git", "push", "-q", "origin", "main"], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert log_lines(log)[-1] == "['b.py']"


def test_deleting_a_remote_branch_checks_nothing(tmp_path: Path) -> None:
    root = _repo_with_push_check(tmp_path)
    head = run_git(root, "rev-parse", "HEAD").strip()
    done = hook(root, "pre-push", stdin=f"(delete) {ZERO} refs/heads/gone {head}\n")
    assert done.returncode == 0, done.stderr


def test_bad_stdin_is_one_clear_line(tmp_path: Path) -> None:
    root = _repo_with_push_check(tmp_path)
    done = hook(root, "pre-push", stdin="this is not a ref line\n")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "worktree-gates: error: pre-push: cannot read 'this is not a ref line' from stdin; "
        "git writes '<local ref> <local sha> <remote ref> <remote sha>' lines"
    ]


def test_without_stdin_the_pushed_range_comes_from_the_framework(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _repo_with_push_check(tmp_path)
    base = run_git(root, "rev-parse", "HEAD").strip()
    (root / "b.py").write_text("b = 5\n")
    commit_all(root, "more")
    refs = prepush.parse_refs("")
    assert refs == []
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", base)
    (found,) = prepush.fallback_refs(root)
    assert found.remote_sha == base
    assert prepush.changed_files(root, found) == ["b.py"]


def test_an_unborn_head_cannot_be_pushed(tmp_path: Path) -> None:
    run_git(tmp_path, "init", "-q")
    with pytest.raises(GatesError, match="HEAD has no commit yet"):
        prepush.fallback_refs(tmp_path)
