"""The built-in conditions: pure functions from facts to a :class:`Condition`.

Percentages are computed with coverage.py's own ``Numbers`` and compared with its own
``should_fail_under``, so a gate can never disagree with ``coverage report`` on the same data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from coverage.results import Numbers, should_fail_under

from pytest_worktree_gates.config import CoverageConfig, Gate
from pytest_worktree_gates.gates.model import (
    CheckFacts,
    Condition,
    CoverageFacts,
    GateFacts,
    ServeFacts,
    TestFacts,
)


def tests(facts: TestFacts) -> Condition:
    """No failure, no error, and at least one test ran: an empty run proves nothing."""
    broken = facts.failed + facts.errors
    return Condition(
        name="tests",
        actual=broken,
        threshold=0,
        passed=broken == 0 and facts.ran > 0,
        details={
            "passed": facts.passed,
            "failed": facts.failed,
            "errors": facts.errors,
            "skipped": facts.skipped,
        },
    )


def warnings(count: int, limit: int) -> Condition:
    """pytest's --max-warnings, judged with the gate so a pass can never exit 6 afterwards."""
    return Condition(name="warnings", actual=count, threshold=limit, passed=count <= limit)


def _total(numbers: Iterable[Numbers], precision: int) -> Numbers:
    return sum(numbers, Numbers(precision=precision))


def _percent(
    name: str, value: float, threshold: float, precision: int, **details: object
) -> Condition:
    return Condition(
        name=name,
        actual=value,
        threshold=threshold,
        passed=not should_fail_under(value, threshold, precision),
        details=details,
        percent=True,
    )


def coverage_total(facts: CoverageFacts, fail_under: float) -> Condition:
    if facts.total is not None and not facts.files:
        return _percent("coverage.total", facts.total, fail_under, facts.precision)
    total = _total((file.numbers for file in facts.files), facts.precision)
    return _percent(
        "coverage.total",
        total.pc_covered,
        fail_under,
        facts.precision,
        statements=total.n_statements,
        missing=total.n_missing,
        branches=total.n_branches,
        partial_branches=total.n_partial_branches,
    )


def coverage_branch(facts: CoverageFacts, fail_under: float) -> Condition:
    if not facts.branch:
        # No arcs were measured: "100 % of no branches" would be a pass that means nothing.
        return Condition(
            name="coverage.branch",
            actual=None,
            threshold=fail_under,
            passed=False,
            details={"error": "branch coverage was not measured; add --cov-branch"},
            percent=True,
        )
    total = _total((file.numbers for file in facts.files), facts.precision)
    return _percent(
        "coverage.branch",
        total.pc_branches,
        fail_under,
        facts.precision,
        branches=total.n_branches,
        missing_branches=total.n_missing_branches,
    )


def longest_glob(name: str, globs: Iterable[str]) -> str | None:
    """The most specific glob that matches ``name``: longest match wins."""
    matching = [glob for glob in globs if fnmatchcase(name, glob)]
    return max(matching, key=len) if matching else None


def coverage_paths(facts: CoverageFacts, paths: Iterable[tuple[str, float]]) -> list[Condition]:
    minimums = dict(paths)
    groups: dict[str, list[Numbers]] = {glob: [] for glob in minimums}
    for file in facts.files:
        glob = longest_glob(file.name, minimums)
        if glob is not None:
            groups[glob].append(file.numbers)
    conditions = []
    for glob, threshold in minimums.items():
        if not groups[glob]:
            # A glob that matches nothing is almost always a typo; passing it would hide that.
            # One whose files all belong to longer globs has nothing left to judge.
            claimed = any(fnmatchcase(file.name, glob) for file in facts.files)
            note = (
                "every matching file belongs to a longer glob"
                if claimed
                else ("no measured file matches this glob")
            )
            conditions.append(
                Condition(
                    name=f"coverage.path:{glob}",
                    actual=None,
                    threshold=threshold,
                    passed=claimed,
                    details={"note" if claimed else "error": note},
                    percent=True,
                )
            )
            continue
        total = _total(groups[glob], facts.precision)
        conditions.append(
            _percent(
                f"coverage.path:{glob}",
                total.pc_covered,
                threshold,
                facts.precision,
                files=total.n_files,
            )
        )
    return conditions


def uncovered_changes(
    facts: CoverageFacts, changed: Mapping[str, frozenset[int]]
) -> tuple[int, int, dict[str, list[int]]]:
    """(coverable changed lines, covered ones, uncovered lines by file name)."""
    coverable = covered = 0
    uncovered: dict[str, list[int]] = {}
    for file in facts.files:
        lines = changed.get(file.path)
        if not lines:
            continue
        measured = lines & file.statements
        missing = sorted(measured & file.missing)
        coverable += len(measured)
        covered += len(measured) - len(missing)
        if missing:
            uncovered[file.name] = missing
    return coverable, covered, uncovered


def coverage_diff(
    facts: CoverageFacts, changed: Mapping[str, frozenset[int]], fail_under: float
) -> Condition:
    coverable, covered, uncovered = uncovered_changes(facts, changed)
    # Like diff-cover: a diff with no coverable line is fully covered.
    percent = 100.0 * covered / coverable if coverable else 100.0
    return _percent(
        "coverage.diff",
        percent,
        fail_under,
        facts.precision,
        lines=coverable,
        covered=covered,
        uncovered=uncovered,
    )


def coverage_ratchet(facts: CoverageFacts, baseline: Mapping[str, int]) -> Condition:
    """Fails only when a file has more missing lines than its baseline allows.

    Counting missing lines rather than a percentage means deleting covered code never fails it.
    A file missing from the baseline is new, and new code may not add uncovered lines.
    """
    risen = {
        file.name: {"baseline": baseline.get(file.name, 0), "missing": len(file.missing)}
        for file in facts.files
        if len(file.missing) > baseline.get(file.name, 0)
    }
    return Condition(
        name="coverage.ratchet",
        actual=len(risen),
        threshold=0,
        passed=not risen,
        details={"files": risen},
    )


def check(facts: CheckFacts) -> Condition:
    details: dict[str, object] = {"command": facts.command, "files": facts.files}
    if not facts.ran:
        # Shown, not failed: a project may have no file of a kind yet; a glob typo is visible.
        details["note"] = "no file matched the check's files globs"
    if facts.errors:
        details["output"] = facts.output
    return Condition(
        name=f"check:{facts.name}",
        actual=facts.errors,
        threshold=0,
        passed=facts.errors == 0 and facts.returncode == 0,
        details=details,
    )


def serve_health(facts: ServeFacts) -> Condition:
    """The served app answered 2xx on its health path within the timeout; actual: seconds."""
    details: dict[str, object] = {"command": facts.command, "url": facts.url}
    if facts.error:
        details["error"] = facts.error
    if facts.output:
        details["output"] = facts.output
    return Condition(
        name="serve.health",
        actual=facts.seconds,
        threshold=facts.timeout,
        passed=facts.healthy,
        details=details,
    )


def evaluate(gate: Gate, config: CoverageConfig, facts: GateFacts) -> list[Condition]:
    """All built-in conditions this gate demands, in the order the table shows them."""
    conditions = [tests(facts.tests)]
    if facts.serve is not None:
        conditions.append(serve_health(facts.serve))
    if gate.coverage:
        conditions.extend(_coverage_conditions(config, facts))
    conditions.extend(check(result) for result in facts.checks)
    return conditions


def _coverage_conditions(config: CoverageConfig, facts: GateFacts) -> list[Condition]:
    if facts.coverage is None or not (facts.coverage.files or facts.coverage.total is not None):
        return [
            Condition(
                name="coverage.total",
                actual=None,
                threshold=config.fail_under,
                passed=False,
                details={"error": "no coverage data was measured (was --no-cov given?)"},
                percent=True,
            )
        ]
    coverage = facts.coverage
    conditions = [coverage_total(coverage, config.fail_under)]
    if config.branch:
        conditions.append(coverage_branch(coverage, config.fail_under))
    conditions.extend(coverage_paths(coverage, config.paths))
    if config.diff_fail_under > 0 and facts.changed is not None:
        conditions.append(coverage_diff(coverage, facts.changed, config.diff_fail_under))
    if facts.baseline is not None:
        conditions.append(coverage_ratchet(coverage, facts.baseline))
    return conditions
