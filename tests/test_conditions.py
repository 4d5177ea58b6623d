"""The pure conditions, on facts built the way covfacts builds them."""

from __future__ import annotations

from coverage.results import Numbers

from pytest_worktree_gates.config import CoverageConfig, Gate
from pytest_worktree_gates.gates import conditions
from pytest_worktree_gates.gates.model import (
    CoverageFacts,
    FileCoverage,
    GateFacts,
    TestFacts,
)


def file(name: str, statements: set[int], missing: set[int], precision: int = 0) -> FileCoverage:
    numbers = Numbers(
        precision=precision, n_files=1, n_statements=len(statements), n_missing=len(missing)
    )
    return FileCoverage(f"/repo/{name}", name, numbers, frozenset(statements), frozenset(missing))


def facts(*files: FileCoverage, precision: int = 0) -> CoverageFacts:
    return CoverageFacts(files, precision, branch=False)


def test_an_empty_run_fails_the_tests_condition() -> None:
    assert not conditions.tests(TestFacts()).passed
    assert not conditions.tests(TestFacts(passed=3, errors=1)).passed
    assert conditions.tests(TestFacts(passed=1, skipped=4)).passed


def test_total_uses_coverages_rounding_at_its_precision() -> None:
    # 79.96 % rounds to 80 at precision 0 (pass), and stays 79.96 at precision 2 (fail).
    close = [file("b.py", set(range(1, 10001)), set(range(1, 2005)))]
    assert conditions.coverage_total(facts(*close, precision=0), 80).passed
    assert not conditions.coverage_total(facts(*close, precision=2), 80).passed


def test_a_threshold_of_100_means_exactly_100() -> None:
    nearly = [file("a.py", set(range(1, 100001)), {7})]
    assert not conditions.coverage_total(facts(*nearly), 100).passed


def test_diff_with_no_coverable_line_is_fully_covered() -> None:
    data = facts(file("a.py", {1, 2, 3}, {3}))
    result = conditions.coverage_diff(data, {"/repo/a.py": frozenset({10, 11})}, 90)
    assert (result.actual, result.passed) == (100.0, True)
    assert result.details["lines"] == 0


def test_diff_counts_only_measured_changed_lines() -> None:
    data = facts(file("a.py", {1, 2, 3, 4}, {3, 4}), file("b.py", {1}, set()))
    changed = {"/repo/a.py": frozenset({2, 3, 9}), "/repo/b.py": frozenset({1})}
    result = conditions.coverage_diff(data, changed, 50)
    assert result.actual == 200 / 3
    assert result.details["uncovered"] == {"a.py": [3]}


def test_ratchet_treats_new_files_as_allowing_nothing() -> None:
    data = facts(file("old.py", {1, 2}, {2}), file("new.py", {1, 2}, {1}))
    result = conditions.coverage_ratchet(data, {"old.py": 1})
    assert not result.passed
    assert result.details["files"] == {"new.py": {"baseline": 0, "missing": 1}}


def test_evaluate_orders_conditions_and_skips_coverage_for_a_coverage_free_gate() -> None:
    gate_facts = GateFacts(
        "integration", TestFacts(passed=1), facts(file("a.py", {1}, set())), None, (), None
    )
    names = [c.name for c in conditions.evaluate(Gate("integration"), CoverageConfig(), gate_facts)]
    assert names == ["tests"]
    config = CoverageConfig(paths=(("*.py", 50.0),), diff_fail_under=10)
    full = GateFacts(
        "unit", TestFacts(passed=1), facts(file("a.py", {1}, set())), {}, (), {"a.py": 0}
    )
    names = [c.name for c in conditions.evaluate(Gate("unit", coverage=True), config, full)]
    assert names == [
        "tests", "coverage.total", "coverage.path:*.py", "coverage.diff", "coverage.ratchet"
    ]  # fmt: skip


def test_branch_condition_fails_when_no_branch_was_measured() -> None:
    result = conditions.coverage_branch(facts(file("a.py", {1}, set())), 80)
    assert not result.passed
    assert "--cov-branch" in result.details["error"]


def test_a_glob_whose_files_all_belong_to_longer_globs_passes_with_a_note() -> None:
    data = facts(file("app/core/a.py", {1, 2}, {2}))
    found = {
        c.name: c for c in conditions.coverage_paths(data, [("app/*", 90), ("app/core/*", 10)])
    }
    assert found["coverage.path:app/*"].passed
    assert found["coverage.path:app/*"].details == {
        "note": "every matching file belongs to a longer glob"
    }
    assert found["coverage.path:app/core/*"].actual == 50.0
