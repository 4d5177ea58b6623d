"""The commit hook's early start (hookstart) and the checks that start with the fixers.

The early start answers a rerun from the cache, or starts the checks before the rest of the
package loads; these tests pin that it changes no verdict and never touches unstaged work.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_worktree_gates import checkrun, hookstart, staging
from pytest_worktree_gates.config import Check
from tests.conftest import git
from tests.hookrepos import (
    LOGGING,
    checks_toml,
    commit,
    committed,
    hook_env,
    install,
    log_lines,
    make_repo,
    script,
)

PASSES = LOGGING
# A lint that fails on content the formatter would change. It reads at once and answers late,
# and the formatter writes late: a lint run that started with the formatter reads the content
# as staged, so only a rerun after the formatter can pass.
UGLY_FAILS = LOGGING + (
    "import time\nugly = any('  =' in open(p).read() for p in sys.argv[1:])\n"
    "time.sleep(0.6)\nsys.exit(ugly)\n"
)
FORMATTER = (
    "import sys, time\ntime.sleep(0.3)\nfor p in sys.argv[1:]:\n    t = open(p).read()\n"
    + ("    if '  =' in t:\n        open(p, 'w').write(t.replace('  =', ' ='))\n")
)


def shim(root: Path, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed pre-commit shim, run exactly as git runs it (from the work tree's top)."""
    return subprocess.run(
        ["sh", ".git/hooks/pre-commit"],
        cwd=root,
        env=hook_env(log),
        capture_output=True,
        text=True,
        check=False,
    )


def enter(root: Path, log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in ``root`` with the hook's environment, as git runs the shim (once per test)."""
    for name, value in hook_env(log).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(root)


def early_start() -> object:
    """hookstart.prestart in this process, as the shim calls it (the plan must be saved)."""
    out = io.StringIO()
    result = hookstart.prestart(out)
    if isinstance(result, hookstart.Prestart):
        names = sorted(result.started)
        result.stop()
        return names
    return result, out.getvalue()


def run_in_process() -> None:
    """One hook run in this process: a plan saved here is keyed by this interpreter."""
    from pytest_worktree_gates import hookmain

    assert hookmain.main(["pre-commit"]) == 0


def a_staged(tmp_path: Path, **checks: str) -> Path:
    """A repo with these check commands and ``a.py`` staged: where most tests here begin."""
    root = make_repo(tmp_path / "repo", checks_toml(**checks))
    (root / "a.py").write_text("a = 1\n")
    git(root, "add", "a.py")
    return root


def test_status_reads_staged_blobs_and_unstaged_paths_in_one_call(tmp_path: Path) -> None:
    names = ["with space.py", "new\nline.py", "ünïcødé.py", "-dash.py", "deep/er/sub.py"]
    root = make_repo(tmp_path / "repo", "", {"kept.py": "k = 1\n", "gone.py": "g = 1\n"})
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x = 1\n")
    (root / "link.py").symlink_to("kept.py")
    git(root, "add", "-A")
    git(root, "rm", "-q", "gone.py")
    (root / "kept.py").write_text("k = 2\n")  # unstaged only
    (root / "deep/er/sub.py").write_text("x = 2\n")  # staged and unstaged
    found = staging.status(root)
    blobs = {item.path: item.blob for item in found.staged}
    assert sorted(blobs) == sorted(names)  # not the symlink, not the deletion
    assert blobs["with space.py"] == git(root, "rev-parse", ":with space.py").strip()
    assert found.unstaged == {"kept.py", "deep/er/sub.py"}


def test_parse_status_skips_what_is_not_a_staged_regular_file() -> None:
    blob = "a" * 40
    zero = "0" * 40
    out = (
        f"1 A. N... 000000 100755 100755 {zero} {blob} run me.py\0"
        f"1 T. N... 100644 120000 120000 {blob} {blob} now-a-link.py\0"
        f"2 R. N... 100644 100644 100644 {blob} {blob} R100 new.py\0old.py\0"
        f"u UU N... 100644 100644 100644 100644 {blob} {blob} {blob} both.py\0"
    ).encode()
    staged, unstaged = hookstart.parse_status(out)
    assert staged == [("run me.py", blob)]
    assert unstaged == {"both.py"}


def test_a_cached_rerun_is_answered_before_the_package_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "runs.log"
    root = a_staged(tmp_path, logged=script(tmp_path, "logged", PASSES))
    enter(root, log, monkeypatch)
    run_in_process()
    assert log_lines(log) == ["['a.py']"]
    assert early_start() == (0, "logged: ok (cached)\n")
    assert len(log_lines(log)) == 1
    # A new staged blob is a new cache subject: the early start runs the check on it, and,
    # as it passes, records and reports it without the full runner.
    (root / "a.py").write_text("a = 2\n")
    git(root, "add", "a.py")
    assert early_start() == (0, "logged: ok on 1 file (a.py)\n")
    assert log_lines(log) == ["['a.py']", "['a.py']"]
    assert early_start() == (0, "logged: ok (cached)\n")


def test_the_shim_reruns_from_the_cache_and_checks_a_changed_blob(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    root = a_staged(tmp_path, logged=script(tmp_path, "logged", PASSES))
    install(root)
    assert shim(root, log).returncode == 0  # the full runner, which saves the plan
    again = shim(root, log)
    assert again.returncode == 0
    assert again.stdout == "logged: ok (cached)\n"
    assert len(log_lines(log)) == 1
    (root / "a.py").write_text("a = 2\n")
    git(root, "add", "a.py")
    changed = shim(root, log)
    assert changed.returncode == 0
    assert "logged: ok on 1 file (a.py)" in changed.stdout
    assert log_lines(log) == ["['a.py']", "['a.py']"]


def test_unstaged_work_is_left_to_the_full_runner_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "runs.log"
    root = a_staged(tmp_path, logged=script(tmp_path, "logged", PASSES))
    install(root)
    assert commit(root, log=log).returncode == 0  # saves the plan
    (root / "a.py").write_text("a = 1\nb = 2\n")
    git(root, "add", "a.py")
    work = "a = 1\nb = 2\nc = 3\n"
    (root / "a.py").write_text(work)
    done = commit(root, log=log)
    assert done.returncode == 0, done.stdout + done.stderr
    assert committed(root, "a.py") == "a = 1\nb = 2\n"
    assert (root / "a.py").read_text() == work
    enter(root, log, monkeypatch)
    (root / "b.py").write_text("b = 1\n")
    git(root, "add", "b.py")
    run_in_process()  # the full runner, which saves the plan for this interpreter
    assert (root / "a.py").read_text() == work
    (root / "b.py").write_text("b = 2\n")
    git(root, "add", "b.py")
    assert early_start() == (None, "")  # a.py's unstaged work must be set aside first
    (root / "a.py").write_text("a = 1\nb = 2\n")
    assert early_start() == (0, "logged: ok on 1 file (b.py)\n")


def test_a_patch_left_by_a_killed_run_is_left_to_the_full_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "runs.log"
    root = a_staged(tmp_path, logged=script(tmp_path, "logged", PASSES))
    enter(root, log, monkeypatch)
    run_in_process()
    assert early_start() == (0, "logged: ok (cached)\n")
    # Where the full runner sets unstaged work aside: it must be put back before any commit.
    (root / ".git" / hookstart.STATE_DIR / staging.PATCH_NAME).write_text("")
    assert early_start() == (None, "")


def test_checks_started_with_a_fixer_that_rewrites_are_run_again(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    runs = {
        "format": script(tmp_path, "format", FORMATTER),
        "lint": script(tmp_path, "lint", UGLY_FAILS),
    }
    pyproject = (
        '[tool.worktree-gates.checks]\npreset = "none"\n'
        f"lint = {{ run = {json.dumps(runs['lint'])} }}\n"
        f"format = {{ run = {json.dumps(runs['format'])}, fixes = true }}\n"
    )
    root = make_repo(tmp_path / "repo", pyproject)
    install(root)
    for number in range(3):  # the first commit saves the plan; the next ones start early
        name = f"m{number}.py"
        (root / name).write_text("x  = 1\n")
        git(root, "add", name)
        done = commit(root, log=log)
        assert done.returncode == 0, done.stdout + done.stderr
        assert committed(root, name) == "x = 1\n"
        assert "fixed and restaged: 1 file" in done.stderr
    assert git(root, "status", "--porcelain") == ""


def test_a_failure_after_an_early_start_is_reported_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "runs.log"
    fails_on_b = LOGGING + "sys.exit('b.py' in sys.argv[1:] and 'B001 b.py is bad')\n"
    root = a_staged(tmp_path, lint=script(tmp_path, "lint", fails_on_b))
    enter(root, log, monkeypatch)
    run_in_process()  # saves the plan
    (root / "b.py").write_text("b = 1\n")
    git(root, "add", "b.py")
    started = hookstart.prestart(io.StringIO())
    assert isinstance(started, hookstart.Prestart)  # not answered early: the runner reports
    assert sorted(started.started) == ["lint"]
    started.stop()
    git(root, "reset", "-q", "b.py")
    install(root)
    assert commit(root, log=log).returncode == 0  # a.py; saves the plan for the shim
    git(root, "add", "b.py")
    done = commit(root, log=log)  # started early, failed, reported by the full runner
    assert done.returncode == 1
    assert "lint: FAILED on 1 file (b.py)" in done.stderr
    assert "B001 b.py is bad" in done.stderr
    assert "rerun it alone: worktree-gates hooks run pre-commit --check lint" in done.stderr


def test_a_changed_config_is_honoured_by_the_next_commit(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    root = a_staged(tmp_path, lint=script(tmp_path, "ok", PASSES))
    install(root)
    assert commit(root, log=log).returncode == 0
    (root / "pyproject.toml").write_text(
        checks_toml(lint=script(tmp_path, "no", "import sys\nsys.exit(1)\n"))
    )
    (root / "b.py").write_text("b = 1\n")
    git(root, "add", "b.py")
    done = commit(root, log=log)
    assert done.returncode == 1
    assert "lint: FAILED on 1 file (b.py)" in done.stderr


def test_a_plan_is_void_once_a_config_file_or_a_tool_is_rewritten(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.x]\na = 1\n")
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    state = str(tmp_path / "state")

    def save() -> None:
        key = hookstart.plan_key(str(root))
        check = ("lint", False, ("*.py",), False, "setup", ("tool", hookstart.FILES), str(tool),
                 hookstart.file_stamp(str(tool)), False, True)  # fmt: skip
        hookstart.save_plan(state, key, [check])

    save()
    assert hookstart.load_plan(state, str(root)) is not None
    (root / "pyproject.toml").write_text("[tool.x]\na = 2\n")  # same size, new content
    assert hookstart.load_plan(state, str(root)) is None
    save()
    (root / "ruff.toml").write_text("")  # a tool config file appears
    assert hookstart.load_plan(state, str(root)) is None
    save()
    tool.write_text("#!/bin/sh\n")  # rewritten in place: same size and content
    os.utime(tool, ns=(0, 0))
    assert hookstart.load_plan(state, str(root)) is None


@pytest.mark.parametrize(
    "run", ["ruff check {files}", "mypy --strict {files}", "tool --all={files} x", "tool ."]
)
def test_a_saved_command_filled_in_is_the_command_the_runner_builds(run: str) -> None:
    check = Check("c", run)
    template = checkrun.hook_command(check, [hookstart.FILES])
    files = ["a.py", "-b.py", "with space.py"]
    assert hookstart.fill(template, files) == checkrun.hook_command(check, files)


@pytest.mark.parametrize(
    "glob", ["*.py", "*", "test_*.py", "*_test.py", "a*b*c", "*.*", "x.py", "?.py", "[ab].py"]
)
def test_globs_match_as_fnmatch_does(glob: str) -> None:
    from fnmatch import fnmatchcase

    names = ["a.py", "b.py", "test_x.py", "x_test.py", "abc", "abbc", "acb", "a", ".py",
             "x.py", "dir/x.py", "ab.py", "aXbYc", "no\nline.py", "test_.py"]  # fmt: skip
    for name in names:
        assert hookstart.matches(name, [glob]) == (
            fnmatchcase(name, glob) or fnmatchcase(name.rsplit("/", 1)[-1], glob)
        ), (name, glob)


def test_each_worktree_has_its_own_plan_and_starts_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "runs.log"
    pyproject = checks_toml(logged=script(tmp_path, "logged", PASSES))
    main = make_repo(tmp_path / "main", pyproject)
    linked = tmp_path / "linked"
    git(main, "worktree", "add", "-q", "-b", "feature", str(linked))
    (linked / "pyproject.toml").write_text(pyproject)  # ignored by git: each has its own
    for root in (main, linked):
        (root / "a.py").write_text(f"a = {root.name!r}\n")
        git(root, "add", "a.py")
    enter(main, log, monkeypatch)
    run_in_process()
    monkeypatch.chdir(linked)
    run_in_process()
    git_dir = Path(git(linked, "rev-parse", "--absolute-git-dir").strip())
    assert (git_dir / "worktree-gates" / hookstart.PLAN_NAME).exists()
    assert (main / ".git" / "worktree-gates" / hookstart.PLAN_NAME).exists()
    assert early_start() == (0, "logged: ok (cached)\n")  # the linked worktree's plan
    monkeypatch.chdir(main)
    assert early_start() == (0, "logged: ok (cached)\n")  # and the main checkout's, still
    assert len(log_lines(log)) == 2


def test_commit_all_after_an_early_start_checks_and_restages_the_index_being_committed(
    tmp_path: Path,
) -> None:
    log = tmp_path / "runs.log"
    pyproject = (
        '[tool.worktree-gates.checks]\npreset = "none"\n'
        f"lint = {{ run = {json.dumps(script(tmp_path, 'lint', UGLY_FAILS))} }}\n"
        f"format = {{ run = {json.dumps(script(tmp_path, 'format', FORMATTER))}, fixes = true }}\n"
    )
    root = make_repo(tmp_path / "repo", pyproject, {"m.py": "a = 1\n", "n.py": "b = 1\n"})
    install(root)
    (root / "m.py").write_text("a = 2\n")
    assert commit(root, "-a", log=log).returncode == 0  # saves the plan
    (root / "n.py").write_text("b  = 2\n")  # only in the work tree: -a stages it for the hook
    done = commit(root, "-a", log=log)
    assert done.returncode == 0, done.stdout + done.stderr
    assert committed(root, "n.py") == "b = 2\n"
    assert git(root, "status", "--porcelain") == ""
    (root / "n.py").write_text("b = 3\n")
    clean = commit(root, "-a", log=log)  # passes in the early start itself
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "lint: ok on 1 file (n.py)" in clean.stderr
    assert committed(root, "n.py") == "b = 3\n"


def test_a_whole_tree_check_is_answered_by_the_staged_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "runs.log"
    tree_check = script(tmp_path, "tree", LOGGING, files=False)  # no {files}: the whole tree
    root = a_staged(tmp_path, tree=tree_check)
    enter(root, log, monkeypatch)
    run_in_process()
    assert early_start() == (0, "tree: ok (cached)\n")  # the same staged tree, from write-tree
    (root / "a.py").write_text("a = 2\n")
    git(root, "add", "a.py")
    assert early_start() == ["tree"]  # a new tree: started, and left to the full runner


def test_the_index_cache_tree_gives_the_tree_git_write_tree_writes(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", "", {"base.py": "x = 1\n"})
    for number in range(40):  # entries of every path length, so each padding is crossed
        (root / "d" / ("s" * (number % 9))).mkdir(parents=True, exist_ok=True)
        (root / "d" / ("s" * (number % 9)) / f"{'n' * number}.py").write_text(f"n = {number}\n")
    for name in ["with space.py", "new\nline.py", "ünïcødé.py", "-dash.py"]:
        (root / name).write_text("x = 1\n")
    (root / "later.py").write_text("")
    git(root, "add", "-A")
    git(root, "update-index", "--skip-worktree", "later.py")  # extended flags: version 3
    index = str(root / ".git" / "index")
    assert hookstart.index_tree(index, 20) is None  # `git add` left the root invalid
    tree = git(root, "write-tree").strip()  # as `git commit` does: the cache tree is filled
    assert int.from_bytes(Path(index).read_bytes()[4:8], "big") == 3
    assert hookstart.index_tree(index, 20) == tree
    (root / "base.py").write_text("x = 2\n")
    git(root, "add", "base.py")
    assert hookstart.index_tree(index, 20) is None  # changed since: git must say
    assert hookstart.index_tree(index, 20) != git(root, "write-tree").strip()
    (root / "intent.py").write_text("i = 1\n")
    git(root, "add", "-N", "intent.py")
    git(root, "write-tree")
    assert hookstart.index_tree(index, 20) is None  # git keeps the root invalid: it must say
    git(root, "rm", "-q", "--cached", "intent.py")
    tree = git(root, "write-tree").strip()
    assert hookstart.index_tree(index, 20) == tree
    git(root, "update-index", "--index-version", "4")
    assert hookstart.index_tree(index, 20) is None  # compressed paths: left to git
    assert hookstart.index_tree(str(root / "missing"), 20) is None


def test_the_index_cache_tree_of_a_sha256_repo(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "--object-format=sha256")
    (root / "a.py").write_text("a = 1\n")
    git(root, "add", "a.py")
    tree = git(root, "write-tree").strip()
    assert len(tree) == 64
    assert hookstart.index_tree(str(root / ".git" / "index"), 32) == tree


def test_git_index_file_in_the_git_dir_confirms_the_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(tmp_path / "repo")
    git_dir = os.path.realpath(root / ".git")
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIT_INDEX_FILE", ".git/index")  # as git sets it for `git commit`
    assert hookstart.index_of_git_dir(git_dir) == os.path.join(git_dir, "index")
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "elsewhere" / "index"))
    assert hookstart.index_of_git_dir(git_dir) is None  # not git's own: rev-parse confirms
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert hookstart.index_of_git_dir(git_dir) is None


@pytest.mark.parametrize("where", ["main", "linked", "commit -a"])
def test_a_commit_caches_a_whole_tree_check_by_the_tree_it_commits(
    tmp_path: Path, where: str
) -> None:
    """The tree read from the index (no `git write-tree`) is the tree the commit records."""
    log = tmp_path / "runs.log"
    tool = tmp_path / "tools" / "mypy"  # by its name, a check of the whole tree
    tool.parent.mkdir()
    tool.write_text(f"#!{sys.executable}\n{LOGGING}")
    tool.chmod(0o755)
    pyproject = checks_toml(types=f"{tool} {{files}}")
    root = make_repo(tmp_path / "main", pyproject, {"a.py": "a = 0\n", "sub/b.py": "b = 0\n"})
    install(root)
    if where == "linked":
        linked = tmp_path / "linked"
        git(root, "worktree", "add", "-q", "-b", "feature", str(linked))
        (linked / "pyproject.toml").write_text(pyproject)
        root = linked
    extra = ["-a"] if where == "commit -a" else []
    for number in (1, 2, 3):  # the first saves the plan; the others start early
        (root / "sub" / "b.py").write_text(f"b = {number}\n")
        if not extra:
            git(root, "add", "sub/b.py")
        trace = tmp_path / f"trace-{number}.log"
        done = subprocess.run(
            ["git", "commit", "-q", "-m", "change", *extra],
            cwd=root,
            env={**hook_env(log), "GIT_TRACE": str(trace)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "types: ok on 1 file (sub/b.py)" in done.stderr
        if number > 1:  # the early start asked git for the status alone
            traced = trace.read_text()
            assert "git status" in traced
            assert "write-tree" not in traced and "rev-parse" not in traced
    common = Path(git(root, "rev-parse", "--git-common-dir").strip())
    database = (root / common).resolve() / "worktree-gates" / "state.db"
    connection = sqlite3.connect(database)
    subjects = {row[0] for row in connection.execute("SELECT subject FROM hook_passes")}
    connection.close()
    assert git(root, "rev-parse", "HEAD^{tree}").strip() in subjects
    assert git(root, "rev-parse", "HEAD~1^{tree}").strip() in subjects
    assert len([line for line in log_lines(log) if "sub/b.py" in line]) == 3


def test_git_dir_is_accepted_only_when_it_is_the_work_trees_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git sets GIT_DIR for a hook in a linked worktree; another repo's leaves it to the runner."""
    log = tmp_path / "runs.log"
    root = a_staged(tmp_path, logged=script(tmp_path, "logged", PASSES))
    other = make_repo(tmp_path / "other")
    enter(root, log, monkeypatch)
    run_in_process()
    monkeypatch.setenv("GIT_DIR", str(root / ".git"))
    assert early_start() == (0, "logged: ok (cached)\n")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert early_start() == (None, "")
