"""`pytest --gates` end to end, through pytester, on small real projects."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.conftest import commit_all, git
from tests.projects import (
    CALC,
    NO_CHECKS,
    condition,
    in_git_repo,
    json_report,
    make_project,
)


def test_gate_passes_with_table_and_exit_0(pytester: pytest.Pytester) -> None:
    make_project(pytester, coverage="fail-under = 50\n")
    result = pytester.runpytest("--gates")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*worktree gates: unit*",
            "condition*actual*threshold*verdict",
            "tests*3 passed, 0 failed*pass",
            "coverage.total*pass",
            "gate unit PASSED*",
        ]
    )


def test_coverage_below_threshold_exits_6_not_1(pytester: pytest.Pytester) -> None:
    make_project(pytester, coverage="fail-under = 95\n")
    result, report = json_report(pytester, "--gates")
    assert result.ret == 6
    total = condition(report, "coverage.total")
    assert total["passed"] is False
    assert total["threshold"] == 95
    assert report["exit_code"] == 6
    assert report["passed"] is False
    result.stdout.fnmatch_lines(["coverage.total*>= 95*FAIL", "gate unit FAILED: coverage.total*"])


@pytest.mark.parametrize(
    "coverage",
    [
        "",  # total only: taken from pytest-cov's own report
        'paths = { "app/*" = 10 }\n',  # per-file facts: analysed by the gate
    ],
)
def test_coverage_numbers_equal_coverage_report(pytester: pytest.Pytester, coverage: str) -> None:
    make_project(pytester, coverage=coverage)
    _, report = json_report(pytester, "--gates")
    data = pytester.path / ".coverage"
    exported = pytester.path / "coverage.json"
    subprocess.run(
        [sys.executable, "-m", "coverage", "json", f"--data-file={data}", "-o", str(exported)],
        cwd=pytester.path,
        check=True,
        capture_output=True,
    )
    totals = json.loads(exported.read_text())["totals"]
    total = condition(report, "coverage.total")
    assert total["actual"] == totals["percent_covered"]
    if coverage:
        assert total["details"]["missing"] == totals["missing_lines"]


def test_failing_test_exits_1_even_when_coverage_is_low(pytester: pytest.Pytester) -> None:
    make_project(pytester, tests="def test_broken():\n    assert False\n")
    result, report = json_report(pytester, "--gates")
    assert result.ret == 1
    assert condition(report, "tests")["passed"] is False
    result.stdout.fnmatch_lines(["gate unit FAILED: tests failed (exit 1)*"])


def test_no_tests_collected_exits_5_and_says_the_gate_did_not_run(
    pytester: pytest.Pytester,
) -> None:
    make_project(
        pytester, tests="import pytest\n\n@pytest.mark.integration\ndef test_i():\n    pass\n"
    )
    result = pytester.runpytest("--gates")
    assert result.ret == 5
    result.stdout.fnmatch_lines(
        ["gate unit did not run: no tests were selected by the gate's -m 'not integration'*"]
    )


def test_marker_expression_selects_the_gates_tests(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    unit = pytester.runpytest("--gates=unit")
    unit.assert_outcomes(passed=3, deselected=1)
    integration = pytester.runpytest("--gates=integration")
    integration.assert_outcomes(passed=1, deselected=3)
    assert integration.ret == 0


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--gates=nope"], "ERROR: unknown gate 'nope'; configured gates: final, *"),
        (
            ["--gates", "test_calc.py"],
            "ERROR: --gates took 'test_calc.py' as a gate name; write*",
        ),
        (
            ["--gates", "--gates-report=html:out.html"],
            "ERROR: --gates-report=html:out.html: expected FORMAT:PATH*",
        ),
    ],
    ids=["unknown-gate", "gate-then-path", "bad-report-option"],
)
def test_bad_option_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], error: str
) -> None:
    make_project(pytester)
    result = pytester.runpytest(*args)
    assert result.ret == 4
    result.stderr.fnmatch_lines([error])
    assert "Traceback" not in result.stderr.str()


def test_bad_config_is_a_usage_error_naming_the_key(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.worktree-gates.coverage]\nfail-under = 101\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest("--gates")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["ERROR: *pyproject.toml: tool.worktree-gates.coverage.fail-under: expected a number*"]
    )


def test_without_gates_the_config_is_not_even_read(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.worktree-gates]\nbogus = 1\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    assert pytester.runpytest().ret == 0


def test_explicit_cov_is_respected(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    (pytester.path / "other").mkdir()
    (pytester.path / "other" / "__init__.py").write_text("X = 1\nY = 2\n")
    pytester.makeconftest("import other\n")
    _, report = json_report(pytester, "--gates", "--cov=other")
    assert condition(report, "coverage.total")["actual"] == 100.0  # app/ alone is 87.5 %


def test_no_cov_fails_the_coverage_condition_clearly(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result, report = json_report(pytester, "--gates", "--no-cov")
    assert result.ret == 6
    assert "no coverage data" in condition(report, "coverage.total")["details"]["error"]


def test_coverage_configs_own_fail_under_does_not_masquerade_as_test_failure(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester, extra="[tool.coverage.report]\nfail_under = 100\n")
    result = pytester.runpytest("--gates")
    assert result.ret == 0  # the gate's 80 % decides, not coverage's own 100


def test_xdist_gives_the_same_numbers(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    _, serial = json_report(pytester, "--gates")
    result, parallel = json_report(pytester, "--gates", "-n", "2")
    assert result.ret == 0
    assert parallel["conditions"] == serial["conditions"]


def test_per_path_minimum_longest_glob_wins(pytester: pytest.Pytester) -> None:
    make_project(pytester, coverage='paths = { "app/*" = 99, "app/core/*" = 100, "lib/*" = 10 }\n')
    (pytester.path / "app" / "core").mkdir()
    (pytester.path / "app" / "core" / "__init__.py").write_text("A = 1\n")
    pytester.makeconftest("import app.core\n")
    result, report = json_report(pytester, "--gates")
    assert result.ret == 6
    core = condition(report, "coverage.path:app/core/*")
    assert core["passed"] is True
    assert core["details"]["files"] == 1
    app = condition(report, "coverage.path:app/*")
    assert app["passed"] is False
    assert app["details"]["files"] == 2  # app/__init__.py and app/calc.py, not app/core
    typo = condition(report, "coverage.path:lib/*")
    assert typo["passed"] is False
    assert "no measured file matches" in typo["details"]["error"]


def test_branch_coverage_condition(pytester: pytest.Pytester) -> None:
    make_project(pytester, coverage="branch = true\nfail-under = 10\n")
    _, report = json_report(pytester, "--gates")
    branch = condition(report, "coverage.branch")
    assert branch["details"]["branches"] == 2
    assert branch["actual"] == 50.0  # only the unit test's b != 0 side of div() ran
    assert condition(report, "coverage.total")["details"]["branches"] == 2


def test_lint_check_errors_are_counted_and_fail_the_gate(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    pytester.path.joinpath("pyproject.toml").write_text(
        '[tool.worktree-gates.coverage]\nsource = ["app"]\n'
        '[tool.worktree-gates.gates.unit]\nchecks = ["lint"]\n'
    )
    (pytester.path / "app" / "bad.py").write_text("import os\nimport sys\n")
    result, report = json_report(pytester, "--gates")
    assert result.ret == 6
    lint = condition(report, "check:lint")
    assert lint["actual"] == 2
    assert "F401" in lint["details"]["output"]
    result.stdout.fnmatch_lines(["check:lint*2 errors*FAIL", "  app/bad.py:1: F401 `os` *"])


def test_missing_check_tool_names_the_check_and_command(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    pytester.path.joinpath("pyproject.toml").write_text(
        '[tool.worktree-gates.coverage]\nsource = ["app"]\n'
        '[tool.worktree-gates.checks.audit]\nrun = "no-such-tool-xyz {files}"\n'
        '[tool.worktree-gates.gates.unit]\nchecks = ["audit"]\n'
    )
    result = pytester.runpytest("--gates")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["ERROR: check 'audit': command 'no-such-tool-xyz' not found; install it*"]
    )


def test_junit_and_markdown_reports(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = pytester.runpytest(
        "--gates", "--gates-report=junit:out/gate.xml", "--gates-report=markdown:gate.md"
    )
    assert result.ret == 0
    suite = ElementTree.parse(pytester.path / "out" / "gate.xml").getroot().find("testsuite")
    assert suite is not None
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == ["tests", "coverage.total"]
    assert suite.get("failures") == "0"
    markdown = (pytester.path / "gate.md").read_text()
    assert "| condition | actual | threshold | verdict |" in markdown
    assert "| `coverage.total` |" in markdown


def test_custom_condition_from_a_plugin(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    pytester.makeconftest(
        """
from pytest_worktree_gates.gates.model import Condition

def pytest_gates_conditions(gate, facts):
    ran = facts.tests.passed
    return [Condition("mine:min-tests", actual=ran, threshold=3, passed=ran >= 3)]
"""
    )
    result, report = json_report(pytester, "--gates")
    assert result.ret == 0
    mine = condition(report, "mine:min-tests")
    assert (mine["actual"], mine["passed"]) == (3, True)
    pytester.makeconftest(
        """
from pytest_worktree_gates.gates.model import Condition

def pytest_gates_conditions(gate, facts):
    return [Condition("mine:min-tests", actual=facts.tests.passed, threshold=9, passed=False)]
"""
    )
    result, report = json_report(pytester, "--gates")
    assert result.ret == 6
    assert condition(report, "mine:min-tests")["passed"] is False


def test_ledger_records_a_clean_full_run_only(pytester: pytest.Pytester) -> None:
    root = in_git_repo(pytester)
    narrowed = pytester.runpytest("--gates", "-k", "add or sub or div")
    assert narrowed.ret == 0
    narrowed.stdout.fnmatch_lines(["gate unit PASSED (not recorded: narrowed by -k)"])
    full = pytester.runpytest("--gates")
    tree = git(root, "rev-parse", "HEAD^{tree}").strip()
    full.stdout.fnmatch_lines([f"gate unit PASSED for tree {tree[:12]}"])
    import sqlite3

    database = root / ".git" / "worktree-gates" / "state.db"
    rows = sqlite3.connect(database).execute("SELECT gate, tree, passed FROM ledger").fetchall()
    assert rows == [("unit", tree, 1)]
    (root / "app" / "calc.py").write_text(CALC + "\n# edited\n")
    dirty = pytester.runpytest("--gates")
    dirty.stdout.fnmatch_lines(["gate unit PASSED (not recorded: uncommitted changes)"])


def test_diff_coverage_flags_uncovered_changed_lines(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = in_git_repo(pytester, coverage="diff-fail-under = 100\n")
    git(root, "checkout", "-q", "-b", "feature/x")
    (root / "app" / "calc.py").write_text(CALC + "\n\ndef mul(a, b):\n    return a * b\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result, report = json_report(pytester, "--gates")
    assert result.ret == 6
    diff = condition(report, "coverage.diff")
    assert diff["details"]["lines"] == 2
    assert diff["actual"] == 50.0  # the def line runs at import, its body never does
    assert diff["details"]["uncovered"] == {"app/calc.py": [17]}
    result.stdout.fnmatch_lines(
        ["coverage.diff: app/calc.py: line 17 not covered", "::warning file=app/calc.py,line=17,*"]
    )


def test_diff_coverage_outside_git_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, coverage="diff-fail-under = 80\n")
    result = pytester.runpytest("--gates")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: diff coverage needs a git repository*git init*"])


def test_outside_git_without_diff_coverage_everything_else_works(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester)
    assert pytester.runpytest("--gates").ret == 0


def test_unknown_base_ref_is_a_usage_error(pytester: pytest.Pytester) -> None:
    in_git_repo(pytester)
    result = pytester.runpytest("--gates", "--gates-base=no-such-branch")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: unknown git ref 'no-such-branch'*"])


def test_missing_main_branch_is_a_usage_error_when_diff_coverage_needs_it(
    pytester: pytest.Pytester,
) -> None:
    root = in_git_repo(pytester)
    (root / "pyproject.toml").write_text(
        '[tool.worktree-gates]\nmain-branch = "trunk"\n'
        '[tool.worktree-gates.coverage]\nsource = ["app"]\ndiff-fail-under = 80\n' + NO_CHECKS
    )
    result = pytester.runpytest("--gates")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: unknown git ref 'trunk'*"])


def test_ratchet_fails_only_when_missing_lines_rise(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    baseline = root / ".worktree-gates-baseline.json"
    baseline.write_text(json.dumps({"version": 1, "files": {"app/calc.py": 3}}))
    result, report = json_report(pytester, "--gates")
    assert condition(report, "coverage.ratchet")["passed"] is True
    # Deleting covered code lowers the percentage but not the count of missing lines.
    (root / "app" / "calc.py").write_text(CALC.replace("def sub(a, b):\n    return a - b\n", ""))
    pytester.makepyfile(
        test_calc="from app.calc import add\n\ndef test_add():\n    assert add(1, 1) == 2\n"
    )
    result, report = json_report(pytester, "--gates")
    assert condition(report, "coverage.ratchet")["passed"] is True
    # One more uncovered line in calc.py fails it.
    (root / "app" / "calc.py").write_text(CALC + "\n\ndef mul(a, b):\n    return a * b\n")
    result, report = json_report(pytester, "--gates")
    ratchet = condition(report, "coverage.ratchet")
    assert ratchet["passed"] is False
    assert ratchet["details"]["files"] == {"app/calc.py": {"baseline": 3, "missing": 5}}
    assert result.ret == 6


def test_a_plugin_may_return_a_single_condition(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    pytester.makeconftest(
        "from pytest_worktree_gates.gates.model import Condition\n\n"
        "def pytest_gates_conditions(gate, facts):\n"
        "    return Condition('mine:one', actual=1, threshold=1, passed=True)\n"
    )
    result, report = json_report(pytester, "--gates")
    assert result.ret == 0
    assert condition(report, "mine:one")["passed"] is True


def ledger_rows(root: Path) -> list[tuple[str, int]]:
    database = root / ".git" / "worktree-gates" / "state.db"
    if not database.exists():
        return []
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute("SELECT gate, passed FROM ledger").fetchall()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--collect-only"], "did not run: --collect-only runs no test"),
        (["--cov=app.calc"], "not recorded: coverage measured with an explicit --cov"),
        (["test_calc.py"], "not recorded: narrowed to paths"),
        (["-m", "not slow"], "not recorded: narrowed by -m"),
        (["--deselect", "test_calc.py::test_add"], "not recorded: narrowed by --deselect"),
        (["--ignore=other"], "not recorded: narrowed by --ignore"),
        (["--sw-skip"], "not recorded: narrowed by --sw-skip"),
    ],
)
def test_runs_that_test_less_than_the_gate_are_not_recorded(
    pytester: pytest.Pytester, args: list[str], reason: str
) -> None:
    root = in_git_repo(pytester)
    result = pytester.runpytest(*args, "--gates")
    assert reason in result.stdout.str()
    assert ledger_rows(root) == []


def test_no_tests_selected_is_not_recorded_as_a_failure(pytester: pytest.Pytester) -> None:
    root = in_git_repo(pytester)
    result = pytester.runpytest("--gates", "-k", "nothing_matches_this")
    assert result.ret == 5
    result.stdout.fnmatch_lines(["gate unit did not run: no tests were selected*narrowed by -k*"])
    assert ledger_rows(root) == []


def test_narrowing_through_pytest_addopts_counts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = in_git_repo(pytester)
    monkeypatch.setenv("PYTEST_ADDOPTS", "-k add")
    result = pytester.runpytest("--gates")
    assert "not recorded: narrowed by -k" in result.stdout.str()
    assert ledger_rows(root) == []


def test_paths_and_markers_in_the_projects_addopts_are_its_canonical_run(
    pytester: pytest.Pytester,
) -> None:
    root = in_git_repo(pytester)
    with (root / "pyproject.toml").open("a") as handle:
        handle.write("\n[tool.pytest.ini_options]\naddopts = \"-m 'not slow' test_calc.py\"\n")
    commit_all(root, "addopts")
    result = pytester.runpytest("--gates")
    assert result.ret == 0
    assert ledger_rows(root) == [("unit", 1)]


def test_max_warnings_is_judged_by_the_gate(pytester: pytest.Pytester) -> None:
    if not hasattr(pytest.ExitCode, "MAX_WARNINGS_ERROR"):
        pytest.skip("this pytest has no --max-warnings")
    root = in_git_repo(pytester)
    pytester.makepyfile(
        test_warn="import warnings\n\ndef test_w():\n    warnings.warn('careful')\n"
    )
    commit_all(root, "a warning")
    result, report = json_report(pytester, "--gates", "--max-warnings=0")
    assert result.ret == 6
    assert condition(report, "warnings") == {
        "name": "warnings", "actual": 1, "threshold": 0, "passed": False, "details": {}
    }  # fmt: skip
    result.stdout.fnmatch_lines(["gate unit FAILED: warnings (exit 6)"])
    assert ledger_rows(root) == [("unit", 0)]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("return ['not a condition']", "return Condition objects named"),
        ("return 3", "returned 3"),
        ("return True", "returned True"),
        ("return 'text'", "returned 'text'"),
        ("raise RuntimeError('plugin bug')", "plugin bug"),
    ],
)
def test_a_broken_plugin_fails_the_gate_once_instead_of_crashing_it(
    pytester: pytest.Pytester, body: str, error: str
) -> None:
    make_project(pytester)
    pytester.makeconftest(f"def pytest_gates_conditions(gate, facts):\n    {body}\n")
    result, report = json_report(pytester, "--gates")
    assert result.ret == 6
    invalid = [item for item in report["conditions"] if item["name"] == "plugin:invalid"]
    assert len(invalid) == 1
    assert error in invalid[0]["details"]["error"]


def test_subtests_are_not_counted_as_tests(pytester: pytest.Pytester) -> None:
    if not hasattr(pytest, "Subtests"):
        pytest.skip("this pytest has no built-in subtests")
    make_project(
        pytester,
        tests=(
            "from app.calc import add, div, sub\n\n"
            "def test_many(subtests):\n"
            "    for n in range(3):\n"
            "        with subtests.test(n=n):\n"
            "            assert add(n, 0) == n\n\n"
            "def test_rest():\n"
            "    assert sub(1, 1) == 0 and div(2, 1) == 2\n"
        ),
    )
    result, report = json_report(pytester, "--gates")
    assert result.ret == 0
    assert condition(report, "tests")["details"]["passed"] == 2
