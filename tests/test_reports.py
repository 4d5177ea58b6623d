"""Rendering a verdict, from GateResult values built the way the plugin builds them."""

from __future__ import annotations

import json
from xml.etree import ElementTree

from pytest_worktree_gates import reports
from pytest_worktree_gates.gates.model import Condition, GateResult, exit_code

FAILED = GateResult(
    gate="unit",
    exit_code=6,
    tree=None,
    precision=1,
    conditions=(
        Condition("tests", 0, 0, True, {"passed": 5, "failed": 0, "errors": 0, "skipped": 2}),
        Condition("coverage.total", 78.46153846, 80.0, False, {}, percent=True),
        Condition(
            "coverage.diff",
            60.0,
            90.0,
            False,
            {"uncovered": {"app/a.py": [3, 4, 5, 9]}},
            percent=True,
        ),
        Condition("check:lint", 2, 0, False, {"command": "ruff check", "output": "a.py:1: F401"}),
        Condition(
            "coverage.ratchet", 1, 0, False, {"files": {"app/a.py": {"baseline": 1, "missing": 4}}}
        ),
    ),
)


def test_table_shows_coverage_at_the_configured_precision() -> None:
    lines = reports.table(FAILED)
    assert lines[0].split() == ["condition", "actual", "threshold", "verdict"]
    assert lines[1].split() == ["tests", "5", "passed,", "0", "failed,", "2", "skipped",
                                "0", "failed,", ">=", "1", "ran", "pass"]  # fmt: skip
    assert lines[2].split() == ["coverage.total", "78.5%", ">=", "80.0%", "FAIL"]
    assert lines[4].split() == ["check:lint", "2", "errors", "<=", "0", "FAIL"]


def test_failure_details_name_lines_findings_and_files() -> None:
    assert reports.failure_details(FAILED) == [
        "coverage.diff: app/a.py: lines 3-5, 9 not covered",
        "check:lint (ruff check):",
        "  a.py:1: F401",
        "coverage.ratchet: app/a.py: 4 missing lines, baseline allows 1",
    ]


def test_markdown_has_a_row_per_condition_and_the_details() -> None:
    text = reports.to_markdown(FAILED)
    assert text.startswith("### :x: Gate `unit` failed\n")
    assert "| `coverage.total` | 78.5% | >= 80.0% | :x: |" in text
    assert (
        "| `tests` | 5 passed, 0 failed, 2 skipped | 0 failed, >= 1 ran | :white_check_mark: |"
        in text
    )
    assert "lines 3-5, 9 not covered" in text


def test_junit_has_one_testcase_per_condition_with_failures() -> None:
    suite = ElementTree.fromstring(reports.to_junit(FAILED)).find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "5"
    assert suite.get("failures") == "4"
    failure = suite.find("testcase[@name='coverage.total']/failure")
    assert failure is not None
    assert failure.get("message") == "78.5% (threshold >= 80.0%)"


def test_json_round_trips() -> None:
    data = json.loads(reports.to_json(FAILED))
    assert data["conditions"][1] == {
        "name": "coverage.total", "actual": 78.46153846, "threshold": 80.0,
        "passed": False, "details": {},
    }  # fmt: skip
    assert GateResult.from_json(data) == FAILED


def test_github_annotations_group_consecutive_lines() -> None:
    assert reports.github_annotations(FAILED) == [
        "::warning file=app/a.py,line=3,endLine=5,title=Uncovered change::"
        "Changed lines 3-5 are not covered by the unit gate's tests",
        "::warning file=app/a.py,line=9,endLine=9,title=Uncovered change::"
        "Changed line 9 is not covered by the unit gate's tests",
    ]


def test_exit_code_never_hides_a_test_failure() -> None:
    failing = (Condition("coverage.total", 10.0, 80.0, False),)
    assert exit_code(1, failing) == 1
    assert exit_code(0, failing) == 6
    assert exit_code(0, (Condition("tests", 0, 0, True),)) == 0
    assert exit_code(5, failing) == 5
