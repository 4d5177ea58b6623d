"""Checks in a gate: real ruff and mypy runs, check-only, counted, started with the session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_worktree_gates.checkrun import RunningCheck, command, matches, project_files
from pytest_worktree_gates.config import Check
from tests.conftest import commit_all, init_repo
from tests.projects import condition, json_report, make_project


def run_check(tmp_path: Path, run: str, files: dict[str, str]) -> tuple[int, str, int]:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    facts = RunningCheck(Check("c", run), tmp_path, sorted(files)).finish()
    return facts.errors, facts.output, facts.returncode


def test_ruff_format_runs_check_only_and_never_rewrites(tmp_path: Path) -> None:
    ugly = "x=1\ny =  2\n"
    errors, output, _ = run_check(
        tmp_path, "ruff format {files}", {"a.py": ugly, "b.py": ugly, "ok.py": "z = 3\n"}
    )
    assert errors == 2
    assert (tmp_path / "a.py").read_text() == ugly
    assert "a.py" in output


def test_mypy_errors_are_counted_from_its_json_output(tmp_path: Path) -> None:
    errors, output, returncode = run_check(
        tmp_path,
        "mypy {files}",
        {"m.py": 'x: int = "a"\ny: str = 1\n', "fine.py": "z: int = 1\n"},
    )
    assert returncode == 1
    assert errors == 2
    assert 'm.py:1: Incompatible types in assignment (expression has type "str"' in output
    assert "[assignment]" in output


def test_unknown_tool_counts_a_failing_exit_as_one_error(tmp_path: Path) -> None:
    errors, output, returncode = run_check(
        tmp_path, "python -c \"import sys; print('boom'); sys.exit(3)\"", {"a.py": ""}
    )
    assert (errors, returncode) == (1, 3)
    assert output == "boom"


def test_a_crashing_known_tool_is_one_error_with_its_output(tmp_path: Path) -> None:
    errors, output, _ = run_check(tmp_path, "ruff check --bogus-flag {files}", {"a.py": ""})
    assert errors == 1
    assert "bogus" in output


def test_known_tools_get_check_only_machine_readable_flags() -> None:
    assert command(Check("l", "ruff check {files}"), ["a.py"]) == [
        "ruff", "check", "a.py", "--no-fix", "--output-format=json",
    ]  # fmt: skip
    assert command(Check("t", "mypy --strict {files}"), ["a b.py"]) == [
        "mypy", "--strict", "a b.py", "-O", "json",
    ]  # fmt: skip
    assert command(Check("f", "black -q {files}"), ["a.py"]) == ["black", "-q", "a.py", "--check"]
    assert command(Check("i", "isort {files}"), []) == ["isort", "--check-only"]
    assert command(Check("t", "mypy --output json {files}"), ["a.py"]) == [
        "mypy", "--output", "json", "a.py",
    ]  # fmt: skip
    assert command(Check("e", "echo {{x}} {files}"), ["a.py"]) == ["echo", "{x}", "a.py"]
    # A format the user chose is respected, but a gate still never fixes.
    chosen = command(Check("l", "ruff check --output-format=concise ."), [])
    assert chosen == ["ruff", "check", "--output-format=concise", ".", "--no-fix"]


def test_a_fix_flag_in_the_command_never_rewrites_files_in_a_gate(tmp_path: Path) -> None:
    errors, output, _ = run_check(tmp_path, "ruff check --fix {files}", {"a.py": "import os\n"})
    assert errors == 1
    assert "F401" in output
    assert (tmp_path / "a.py").read_text() == "import os\n"


def test_a_chosen_output_format_is_judged_by_exit_code(tmp_path: Path) -> None:
    errors, output, _ = run_check(
        tmp_path, "ruff check --output-format=concise {files}", {"a.py": "import os\n"}
    )
    assert errors == 1
    assert "F401" in output


def test_a_command_without_files_runs_even_when_no_file_matches(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    check = Check("c", f"python -c \"open({str(marker)!r}, 'w').close()\"", files=("*.nothing",))
    facts = RunningCheck(check, tmp_path, []).finish()
    assert (facts.errors, marker.exists()) == (0, True)


def test_a_deleted_tracked_file_is_not_checked(tmp_path: Path) -> None:
    init_repo(tmp_path)
    (tmp_path / "gone.py").write_text("x = 1\n")
    (tmp_path / "kept.py").write_text("y = 2\n")
    commit_all(tmp_path)
    (tmp_path / "gone.py").unlink()
    assert project_files(tmp_path, ("*.py",)) == ["kept.py"]


def test_file_globs_match_anywhere_in_the_tree() -> None:
    assert matches("src/pkg/a.py", ("*.py",))
    assert matches("requirements-dev.txt", ("requirements*.txt",))
    assert matches("src/pkg/a.py", ("src/*.py",))
    assert not matches("src/pkg/a.pyi", ("*.py",))


def test_checks_start_with_the_session_not_after_the_tests(pytester: pytest.Pytester) -> None:
    # The check leaves a marker file as soon as it starts; the test waits for it. Were checks
    # run after the tests, the test would never see the marker and would fail.
    make_project(
        pytester,
        extra=(
            "[tool.worktree-gates.checks.probe]\n"
            'run = "python -c \'open(\\"check-started\\", \\"w\\").close()\'"\n'
            "[tool.worktree-gates.gates.probe]\n"
            'checks = ["probe"]\n'
        ),
        tests=(
            "import time\nfrom pathlib import Path\n\n"
            "def test_check_is_already_running():\n"
            "    for _ in range(200):\n"
            "        if Path('check-started').exists():\n"
            "            return\n"
            "        time.sleep(0.05)\n"
            "    raise AssertionError('the check did not start before the tests ended')\n"
        ),
    )
    result, report = json_report(pytester, "--gates=probe")
    assert result.ret == 0
    assert condition(report, "check:probe")["passed"] is True


def test_invalid_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    (pytester.path / ".worktree-gates-baseline.json").write_text(json.dumps({"files": [1]}))
    result = pytester.runpytest("--gates")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: *baseline.json: not a valid coverage baseline;*"])


def test_an_interrupted_session_kills_its_checks(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        extra=(
            "[tool.worktree-gates.checks.slow]\n"
            'run = "python -c \'import os, time; open(\\"pid\\", \\"w\\").write(str(os.getpid()));'
            " time.sleep(60)'\"\n"
            "[tool.worktree-gates.gates.slow]\n"
            'checks = ["slow"]\n'
        ),
        tests=(
            "import time\nfrom pathlib import Path\n\n"
            "def test_interrupt():\n"
            "    while not Path('pid').exists():\n"
            "        time.sleep(0.02)\n"
            "    raise KeyboardInterrupt\n"
        ),
    )
    result = pytester.runpytest_subprocess("--gates=slow")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["gate slow did not run: the session ended early (exit 2)"])
    pid = int((pytester.path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_check_with_no_matching_file_shows_no_files(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        extra=(
            "[tool.worktree-gates.checks.docs]\n"
            'run = "ruff check {files}"\nfiles = ["*.nothing"]\n'
            "[tool.worktree-gates.gates.docs]\n"
            'checks = ["docs"]\n'
        ),
    )
    result, report = json_report(pytester, "--gates=docs")
    assert result.ret == 0
    assert condition(report, "check:docs")["details"]["note"].startswith("no file matched")
    result.stdout.fnmatch_lines(["check:docs*no files*pass"])
