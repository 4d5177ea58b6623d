"""The pre-commit hook in real repos: fixers, restaging, partial staging, cache, bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import git
from tests.hookrepos import (
    LOGGING,
    PY,
    checks_toml,
    commit,
    committed,
    hook,
    hook_env,
    install,
    log_lines,
    make_repo,
    script,
    staged,
)

UGLY = "x=1\ny  =  2\n"
PRETTY = "x = 1\ny = 2\n"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "runs.log"


RUFF = '[tool.worktree-gates.checks.types]\nrun = "mypy {files}"\nstage = "pre-push"\n'


def test_a_formatter_fix_is_restaged_and_committed(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", RUFF)
    install(root)
    (root / "new.py").write_text(UGLY)
    git(root, "add", "new.py")
    done = commit(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert committed(root, "new.py") == PRETTY
    assert git(root, "status", "--porcelain") == ""


def test_a_lint_failure_blocks_the_commit_and_says_how_to_rerun(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", RUFF)
    install(root)
    (root / "sub dir").mkdir()
    (root / "sub dir" / "bad.py").write_text("import os\n")
    git(root, "add", "-A")
    done = commit(root)
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "lint: FAILED on 1 file ('sub dir/bad.py')" in out
    assert "F401" in out
    assert "rerun it alone: worktree-gates hooks run pre-commit --check lint" in out
    assert git(root, "rev-list", "--count", "HEAD").strip() == "1"


def test_partially_staged_file_keeps_its_unstaged_hunks(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", RUFF, {"m.py": "a = 1\n"})
    install(root)
    (root / "m.py").write_text("a = 1\nb = 2\n")
    git(root, "add", "m.py")
    work = "a = 1\nb = 2\nc=[ 3 ]\n"  # unstaged and badly formatted: never checked, never lost
    (root / "m.py").write_text(work)
    done = commit(root)
    assert done.returncode == 0, done.stdout
    assert committed(root, "m.py") == "a = 1\nb = 2\n"
    assert (root / "m.py").read_text() == work


def test_a_fix_to_a_partially_staged_file_fails_naming_it_and_keeps_both_versions(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo", RUFF, {"m.py": "a = 1\n"})
    (root / "m.py").write_text("a = 1\nb  =  2\n")
    git(root, "add", "m.py")
    work = "a = 1\nb  =  2\n# unstaged note\n"
    (root / "m.py").write_text(work)
    done = hook(root)
    assert done.returncode == 1
    assert "format: FAILED on 1 file (m.py)" in done.stdout
    assert "also have unstaged changes: 1 file (m.py)" in done.stdout
    assert staged(root, "m.py") == "a = 1\nb  =  2\n"
    assert (root / "m.py").read_text() == work


def test_a_crashing_check_leaves_unstaged_work_in_place(tmp_path: Path) -> None:
    crash = script(tmp_path, "crash", "import sys\nsys.exit(139)\n")
    root = make_repo(tmp_path / "repo", checks_toml(crash=crash))
    (root / "base.py").write_text("x = 2\n")
    git(root, "add", "base.py")
    (root / "base.py").write_text("x = 2\ny = 'unstaged'\n")
    done = hook(root)
    assert done.returncode == 1
    assert "crash: FAILED on 1 file (base.py)" in done.stdout
    assert (root / "base.py").read_text() == "x = 2\ny = 'unstaged'\n"
    assert staged(root, "base.py") == "x = 2\n"


SLOW = "import os, time\ntime.sleep(float(os.environ.get('WTG_SLEEP', '0')))\n"


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:  # git checkout-index replaces the file: it may be gone a moment
        return None


def _start_slow_hook(root: Path) -> subprocess.Popen[str]:
    env = hook_env()
    env["WTG_SLEEP"] = "60"
    process = subprocess.Popen(
        [PY, "-m", "pytest_worktree_gates", "hooks", "run", "pre-commit"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    backup = root / ".git" / "worktree-gates" / "unstaged.patch"
    deadline = time.monotonic() + 30
    while not (backup.exists() and _text(root / "m.py") == "a = 2\n"):
        assert time.monotonic() < deadline, "the hook never set the unstaged hunks aside"
        time.sleep(0.05)
    time.sleep(0.3)  # let it start the check
    return process


@pytest.fixture
def slow_repo(tmp_path: Path) -> Path:
    root = make_repo(
        tmp_path / "repo",
        checks_toml(slow=script(tmp_path, "slow", SLOW)),
        {"m.py": "a = 1\n"},
    )
    (root / "m.py").write_text("a = 2\n")
    git(root, "add", "m.py")
    (root / "m.py").write_text("a = 2\nunstaged = True\n")
    return root


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_hook_puts_unstaged_work_back(slow_repo: Path, sig: int) -> None:
    process = _start_slow_hook(slow_repo)
    process.send_signal(sig)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "unstaged changes are back in place" in err
    assert (slow_repo / "m.py").read_text() == "a = 2\nunstaged = True\n"
    assert not (slow_repo / ".git" / "worktree-gates" / "unstaged.patch").exists()


def test_a_killed_hook_leaves_a_patch_that_the_next_run_restores(slow_repo: Path) -> None:
    process = _start_slow_hook(slow_repo)
    process.kill()
    process.wait(timeout=30)
    assert (slow_repo / "m.py").read_text() == "a = 2\n"  # set aside, not lost:
    assert (slow_repo / ".git" / "worktree-gates" / "unstaged.patch").exists()
    done = hook(slow_repo)
    assert done.returncode == 0, done.stderr
    assert "restored unstaged changes left by an interrupted hook run" in done.stdout
    assert (slow_repo / "m.py").read_text() == "a = 2\nunstaged = True\n"


def test_a_backup_that_no_longer_applies_is_kept_and_named(slow_repo: Path) -> None:
    process = _start_slow_hook(slow_repo)
    process.kill()
    process.wait(timeout=30)
    (slow_repo / "m.py").write_text("rewritten meanwhile\n")
    done = hook(slow_repo)
    assert done.returncode == 1
    assert "no longer apply cleanly" in done.stderr
    assert "unstaged.patch" in done.stderr
    assert (slow_repo / ".git" / "worktree-gates" / "unstaged.patch").exists()


def test_a_passed_file_is_not_checked_again(tmp_path: Path, log: Path) -> None:
    root = make_repo(tmp_path / "repo", checks_toml(logged=script(tmp_path, "logged", LOGGING)))
    (root / "a.py").write_text("a = 1\n")
    (root / "b.py").write_text("b = 1\n")
    git(root, "add", "a.py", "b.py")
    assert hook(root, log=log).returncode == 0
    assert log_lines(log) == ["['a.py', 'b.py']"]
    again = hook(root, log=log)
    assert again.returncode == 0
    assert "logged: ok (cached)" in again.stdout
    assert len(log_lines(log)) == 1
    (root / "b.py").write_text("b = 2\n")
    git(root, "add", "b.py")
    changed = hook(root, log=log)
    assert log_lines(log)[-1] == "['b.py']"
    assert "logged: ok on 1 file (b.py), 1 cached" in changed.stdout


def test_a_whole_tree_check_is_cached_by_the_staged_tree(tmp_path: Path, log: Path) -> None:
    tree_check = script(tmp_path, "tree", LOGGING, files=False)
    root = make_repo(tmp_path / "repo", checks_toml(tree=tree_check))
    (root / "a.py").write_text("a = 1\n")
    git(root, "add", "a.py")
    hook(root, log=log)
    hook(root, log=log)
    assert log_lines(log) == ["[]"]
    (root / "a.py").write_text("a = 2\n")  # unstaged: the staged tree is the same
    hook(root, log=log)
    assert len(log_lines(log)) == 1
    git(root, "add", "a.py")
    hook(root, log=log)
    assert len(log_lines(log)) == 2


def test_a_changed_check_config_invalidates_the_cache(tmp_path: Path, log: Path) -> None:
    root = make_repo(tmp_path / "repo", checks_toml(logged=script(tmp_path, "logged", LOGGING)))
    (root / "a.py").write_text("a = 1\n")
    git(root, "add", "a.py")
    assert hook(root, log=log).returncode == 0
    logged = json.dumps(script(tmp_path, "logged", LOGGING))
    (root / "pyproject.toml").write_text(
        f'[tool.worktree-gates.checks]\npreset = "none"\nlogged = {{ run = {logged}, '
        'files = ["a*.py"] }\n'
    )
    assert hook(root, log=log).returncode == 0
    assert len(log_lines(log)) == 2


HOSTILE = ["with space.py", "new\nline.py", "ünïcødé.py", "-dash.py", "deep/er/sub.py"]


def test_hostile_file_names_are_formatted_restaged_and_committed(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", RUFF)
    install(root)
    for name in HOSTILE:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(UGLY)
    git(root, "add", "-A")
    done = commit(root)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in HOSTILE:
        assert committed(root, name) == PRETTY, name


def test_hostile_names_with_unstaged_hunks_are_restored(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", RUFF, {name: "a = 1\n" for name in HOSTILE})
    for name in HOSTILE:
        (root / name).write_text("a = 2\n")
    git(root, "add", "-A")
    for name in HOSTILE:
        (root / name).write_text("a = 2\nb=[ 3 ]\n")
    assert hook(root).returncode == 0
    for name in HOSTILE:
        assert (root / name).read_text() == "a = 2\nb=[ 3 ]\n"
        assert staged(root, name) == "a = 2\n"


def test_commit_all_restages_into_the_index_being_committed(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", RUFF, {"m.py": "a = 1\n"})
    install(root)
    (root / "m.py").write_text(UGLY)
    done = commit(root, "-a")
    assert done.returncode == 0, done.stdout + done.stderr
    assert committed(root, "m.py") == PRETTY
    assert git(root, "status", "--porcelain") == ""


def test_checks_get_a_clean_git_environment(tmp_path: Path) -> None:
    # git exports GIT_INDEX_FILE to a commit hook; the checks it runs must not see it.
    code = (
        "import os, sys\nleak = {'GIT_DIR', 'GIT_INDEX_FILE'} & set(os.environ)\n"
        "sys.exit(str(leak) if leak else 0)\n"
    )
    probe = script(tmp_path, "probe", code)
    root = make_repo(tmp_path / "repo", checks_toml(probe=probe))
    install(root)
    (root / "a.py").write_text("a = 1\n")
    git(root, "add", "a.py")
    done = commit(root)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_missing_tool_is_one_error_naming_the_check_and_the_install(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", checks_toml(ghost="no-such-tool {files}"))
    (root / "a.py").write_text("a = 1\n")
    git(root, "add", "a.py")
    done = hook(root)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "worktree-gates: error: check 'ghost': command 'no-such-tool' not found; install it "
        "(for example `pip install no-such-tool`) or change "
        "[tool.worktree-gates.checks.ghost] run"
    ]
    assert staged(root, "a.py") == "a = 1\n"


def test_outside_a_repo_and_in_a_bare_repo_the_hook_exits_1(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    done = hook(plain)
    assert (done.returncode, done.stdout) == (1, "")
    assert "is not inside a git work tree" in done.stderr
    assert "Traceback" not in done.stderr
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    done = hook(bare)
    assert done.returncode == 1
    assert "is a bare repository; hooks run in a work tree" in done.stderr


def test_bad_input_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", RUFF)
    (root / "a.py").write_text(UGLY)
    git(root, "add", "a.py")
    unknown = hook(root, "pre-commit", "--check", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        "worktree-gates: error: unknown check 'nope'; configured checks: format, lint, types "
        "(see [tool.worktree-gates.checks] in pyproject.toml)"
    ]
    (root / "pyproject.toml").write_text("[tool.worktree-gates.checks.format]\nfixes = 'yes'\n")
    broken = hook(root)
    assert broken.returncode == 1
    assert "checks.format.fixes: expected true or false" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1
    stage = hook(root, "post-merge")
    assert stage.returncode == 2
    assert staged(root, "a.py") == UGLY


def test_nothing_staged_is_a_quiet_pass(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", RUFF)
    done = hook(root)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_files_on_the_command_line_are_checked_without_touching_the_index(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo", RUFF)
    (root / "a.py").write_text(UGLY)
    done = hook(root, "pre-commit", "--check", "format", "a.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (root / "a.py").read_text() == PRETTY  # fixed in place, for the framework to see
    assert "fixed in place: 1 file (a.py)" in done.stdout
    assert git(root, "status", "--porcelain") == "?? a.py\n"
    # What passed is the fixed content: the original comes back, it is fixed again.
    (root / "a.py").write_text(UGLY)
    assert hook(root, "pre-commit", "--check", "format", "a.py").returncode == 0
    assert (root / "a.py").read_text() == PRETTY
    again = hook(root, "pre-commit", "--check", "format", "a.py")
    assert "format: ok (cached)" in again.stdout


def test_a_changed_tool_config_file_invalidates_the_cache(tmp_path: Path, log: Path) -> None:
    root = make_repo(tmp_path / "repo", checks_toml(logged=script(tmp_path, "logged", LOGGING)))
    (root / "a.py").write_text("a = 1\n")
    git(root, "add", "a.py")
    hook(root, log=log)
    hook(root, log=log)
    assert len(log_lines(log)) == 1
    (root / "ruff.toml").write_text("line-length = 80\n")  # read by the tools, even unstaged
    hook(root, log=log)
    assert len(log_lines(log)) == 2


def test_files_given_from_a_subdirectory_are_found(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", RUFF)
    (root / "pkg").mkdir()
    (root / "pkg" / "a.py").write_text(UGLY)
    (root / "pkg" / "link.py").symlink_to("a.py")
    done = subprocess.run(
        [PY, "-m", "pytest_worktree_gates", "hooks", "run", "pre-commit", "--check", "format",
         "a.py", "link.py", "../../outside.py"],
        cwd=root / "pkg", env=hook_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "format: ok on 1 file (pkg/a.py)" in done.stdout
    assert (root / "pkg" / "a.py").read_text() == PRETTY


def test_a_project_wide_fixer_restages_only_what_is_staged(tmp_path: Path) -> None:
    toml = '[tool.worktree-gates.checks]\npreset = "none"\n'
    toml += '[tool.worktree-gates.checks.format]\nrun = "ruff format"\nfixes = true\n'
    root = make_repo(tmp_path / "repo", toml, {"other.py": "o = 1\n", "mine.py": "m = 1\n"})
    (root / "other.py").write_text("o  =  2\n")  # tracked, changed, not staged: not this commit
    (root / "mine.py").write_text(UGLY)
    git(root, "add", "mine.py")
    done = hook(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fixed and restaged: 1 file (mine.py)" in done.stdout
    assert staged(root, "mine.py") == PRETTY
    assert (root / "other.py").read_text() == "o  =  2\n"
    assert staged(root, "other.py") == "o = 1\n"
