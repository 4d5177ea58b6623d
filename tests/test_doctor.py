"""`worktree-gates doctor`: each problem is found and comes with its fix."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from pytest_worktree_gates import shims
from pytest_worktree_gates.databases import docker
from tests.conftest import SERVICES_HINT, git, require
from tests.hookrepos import PY, checks_toml, hook_env, install, make_repo


def doctor(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "pytest_worktree_gates", "doctor"],
        cwd=root,
        env={**hook_env(), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_healthy_repo_is_all_good(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    install(root)
    done = doctor(root)
    assert done.returncode == 0, done.stdout
    assert "ok   hook pre-commit: installed in" in done.stdout
    assert "ok   check lint:" in done.stdout
    assert done.stdout.endswith("all good\n")


def test_missing_hooks_are_reported_with_the_install_command(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    done = doctor(root)
    assert done.returncode == 1
    assert "FAIL hook pre-commit: not installed" in done.stdout
    assert "fix: `worktree-gates hooks install`" in done.stdout
    assert "2 problems found" in done.stdout


def test_inert_stale_and_foreign_hooks(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    install(root)
    hooks = root / ".git" / "hooks"
    (hooks / "pre-commit").chmod(0o644)
    (hooks / "pre-push").write_text("#!/bin/sh\nexit 0\n")
    done = doctor(root)
    assert "FAIL hook pre-commit:" in done.stdout and "is not executable" in done.stdout
    assert "fix: `chmod +x" in done.stdout
    assert "is a hook that is not ours" in done.stdout
    assert "fix: `worktree-gates hooks install --force`" in done.stdout
    (hooks / "pre-commit").write_text(shims.shim_text("pre-commit") + "# edited\n")
    assert "is an outdated worktree-gates shim" in doctor(root).stdout


def test_a_framework_hook_that_runs_our_hooks_is_fine(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    (root / ".pre-commit-config.yaml").write_text(
        "repos:\n- repo: local\n  hooks:\n  - id: worktree-gates\n    name: w\n"
        "    entry: worktree-gates hooks run pre-commit\n    language: system\n"
    )
    env = hook_env()
    env["PRE_COMMIT_HOME"] = str(tmp_path / "home")
    subprocess.run(["pre-commit", "install"], cwd=root, env=env, check=True, capture_output=True)
    done = doctor(root)
    assert "ok   hook pre-commit: run by the pre-commit framework" in done.stdout


def test_core_hooks_path_pointing_elsewhere(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    install(root)
    git(root, "config", "core.hooksPath", ".husky")
    done = doctor(root)
    assert done.returncode == 1
    assert "core.hooksPath = .husky, so git never runs the shims in" in done.stdout
    assert "git config --unset core.hooksPath" in done.stdout


def test_a_missing_tool_names_the_check_and_the_install(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", checks_toml(spell="codespell-missing {files}"))
    install(root)
    done = doctor(root)
    assert done.returncode == 1
    assert "FAIL check spell: check 'spell': command 'codespell-missing' not found" in done.stdout
    assert "fix: `pip install codespell-missing` in this project's environment" in done.stdout


def test_doctor_says_which_checks_the_hooks_preload(tmp_path: Path) -> None:
    tool = tmp_path / "tools" / "lintish"
    tool.parent.mkdir()
    tool.write_text(f"#!{PY}\nimport sys\nsys.exit(0)\n")
    tool.chmod(0o755)
    pyproject = checks_toml(script=f"{tool} {{files}}", plain=f"{tool} {{files}}")
    pyproject = pyproject.replace("plain = { run", "plain = { preload = false, run")
    root = make_repo(tmp_path / "repo", pyproject)
    install(root)
    done = doctor(root)
    assert done.returncode == 0, done.stdout
    assert f"ok   check script: {tool} (preloaded in hooks)" in done.stdout
    assert f"ok   check plain: {tool} (preload = false: a plain process in hooks)" in done.stdout
    assert "ok   preload: on: an idle server exits after 20 s" in done.stdout  # the suite's
    off = doctor(root, WORKTREE_GATES_PRELOAD_IDLE="0")
    assert "ok   preload: off (WORKTREE_GATES_PRELOAD_IDLE=0)" in off.stdout


def test_a_bad_preload_setting_is_a_problem_with_its_fix(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    install(root)
    done = doctor(root, WORKTREE_GATES_PRELOAD_IDLE="ten minutes")
    assert done.returncode == 1
    assert (
        "FAIL preload: WORKTREE_GATES_PRELOAD_IDLE='ten minutes' is not a number of seconds"
        in done.stdout
    )
    assert "fix: unset WORKTREE_GATES_PRELOAD_IDLE, or set it to a number of seconds" in done.stdout
    assert "1 problem found" in done.stdout


def test_a_config_error_is_reported_and_the_rest_still_checked(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", "[tool.worktree-gates]\nvariant = 3\n")
    install(root)
    done = doctor(root)
    assert done.returncode == 1
    assert "FAIL config:" in done.stdout and "variant: expected a variant name" in done.stdout
    assert "ok   hook pre-push" in done.stdout


def test_a_docker_engine_that_does_not_answer(tmp_path: Path) -> None:
    toml = '[tool.worktree-gates.databases]\nbackend = "docker"\n'
    root = make_repo(tmp_path / "repo", toml)
    install(root)
    started = time.monotonic()
    done = doctor(root, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    assert time.monotonic() - started < 20
    assert done.returncode == 1
    assert "FAIL docker: the Docker engine does not answer" in done.stdout
    assert "fix: start the Docker engine" in done.stdout


def test_docker_is_not_asked_when_no_database_needs_it(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    install(root)
    done = doctor(root, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    assert "docker:" not in done.stdout


def test_a_docker_engine_that_answers(tmp_path: Path) -> None:
    # Fails, not skips, without an engine under WTG_REQUIRE_SERVICES=1 (CI).
    require("" if docker.engine_answers() else "no Docker engine answers", SERVICES_HINT)
    root = make_repo(tmp_path / "repo", '[tool.worktree-gates.databases]\nbackend = "docker"\n')
    install(root)
    done = doctor(root)  # the engine that answered above: DOCKER_HOST, else the default
    assert "ok   docker: the Docker engine answers" in done.stdout


def test_unstaged_work_left_by_a_killed_hook(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    install(root)
    (root / ".git" / "worktree-gates").mkdir(exist_ok=True)
    (root / ".git" / "worktree-gates" / "unstaged.patch").write_text("")
    done = doctor(root)
    assert "unstaged changes from an interrupted hook run are saved in" in done.stdout
    assert "`worktree-gates hooks run pre-commit` puts them back" in done.stdout


def test_doctor_outside_a_repo(tmp_path: Path) -> None:
    done = doctor(tmp_path)
    assert done.returncode == 2
    assert "is not inside a git work tree" in done.stderr
