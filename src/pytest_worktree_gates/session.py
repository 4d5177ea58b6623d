"""One gate run inside pytest: decided before the first test, judged after the last.

Imported only when ``--gates`` is given, so a plain ``pytest`` run pays nothing for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_worktree_gates import checkrun, git, reports, state
from pytest_worktree_gates.baseline import read_baseline
from pytest_worktree_gates.config import Config, Gate, load
from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.gates import conditions
from pytest_worktree_gates.gates.model import (
    CheckFacts,
    Condition,
    CoverageFacts,
    GateFacts,
    GateResult,
    TestFacts,
    exit_code,
)

NO_TESTS_RAN = 5  # pytest.ExitCode.NO_TESTS_COLLECTED


@dataclass
class GateSetup:
    """Everything about this gate run that is decided before the first test."""

    config: Config
    gate: Gate
    reports: list[tuple[str, Path]]
    repo: git.Repo | None
    base: str | None  # merge-base commit for changed lines, when diff coverage is on
    baseline: dict[str, int] | None  # the ratchet's allowances, when a baseline exists
    narrowed: bool = False


def prepare(early_config: pytest.Config, options: Any) -> GateSetup:
    loaded = load(early_config.rootpath)
    if options.gates not in loaded.gates and Path(options.gates).exists():
        # `--gates tests/` reads "tests/" as the gate's name, as `--cov tests/` would.
        raise GatesError(
            f"--gates took {options.gates!r} as a gate name; write `--gates=GATE` "
            f"(for example `pytest --gates=unit {options.gates}`)"
        )
    gate = loaded.gate(options.gates)
    report_targets = [reports.parse_report_option(value) for value in options.gates_report]
    repo = git.find_repo(loaded.root)
    base = None
    wants_diff = gate.coverage and loaded.coverage.diff_fail_under > 0
    if wants_diff or options.gates_base:
        if repo is None:
            raise GatesError(
                f"diff coverage needs a git repository, and {loaded.root} is not inside one; "
                "run `git init`, or set diff-fail-under = 0 in [tool.worktree-gates.coverage]"
            )
        base = git.merge_base(repo.root, options.gates_base or loaded.main_branch)
    if not hasattr(early_config, "workerinput"):
        for name in gate.checks:
            checkrun.require_tool(loaded.checks[name])
    baseline = read_baseline(loaded.root / loaded.coverage.baseline) if gate.coverage else None
    return GateSetup(loaded, gate, report_targets, repo, base, baseline)


@dataclass
class Outcomes:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    def facts(self) -> TestFacts:
        return TestFacts(self.passed, self.failed, self.errors, self.skipped)


@dataclass(eq=False)  # plugins must stay hashable
class GateSession:
    """The controller's side of one gate run."""

    config: pytest.Config
    setup: GateSetup
    outcomes: Outcomes = field(default_factory=Outcomes)
    running: list[checkrun.RunningCheck] = field(default_factory=list)
    tree_at_start: str | None = None
    result: GateResult | None = None
    status: int = 0

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        setup = self.setup
        if setup.repo is not None:
            self.tree_at_start = git.clean_tree(setup.repo.root)
        checks = [setup.config.checks[name] for name in setup.gate.checks]
        self.running = checkrun.start(checks, setup.config.root)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.outcomes.errors += 1

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            if report.passed:
                self.outcomes.passed += 1
            elif report.failed and not hasattr(report, "wasxfail"):
                self.outcomes.failed += 1
            elif report.skipped:
                self.outcomes.skipped += 1
        elif report.failed:
            self.outcomes.errors += 1
        elif report.skipped and report.when == "setup":
            self.outcomes.skipped += 1

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus not in (0, 1, NO_TESTS_RAN):  # interrupted, internal or usage error
            for running in self.running:
                running.kill()
            self.status = int(exitstatus)
            return
        checks = tuple(running.finish() for running in self.running)
        self.result = self.evaluate(int(exitstatus), checks)
        self.status = self.result.exit_code
        session.exitstatus = self.result.exit_code
        for kind, path in self.setup.reports:
            reports.write(self.result, kind, path)
        self.record(self.result)

    def evaluate(self, pytest_status: int, checks: tuple[CheckFacts, ...]) -> GateResult:
        setup = self.setup
        coverage = self.coverage_facts() if setup.gate.coverage else None
        facts = GateFacts(
            gate=setup.gate.name,
            tests=self.outcomes.facts(),
            coverage=coverage,
            changed=self.changed_lines(),
            checks=checks,
            baseline=setup.baseline,
        )
        found = conditions.evaluate(setup.gate, setup.config.coverage, facts)
        for extra in self.config.hook.pytest_gates_conditions(gate=setup.gate, facts=facts):
            found.extend(_plugin_condition(condition) for condition in extra or ())
        final = tuple(found)
        return GateResult(
            gate=setup.gate.name,
            exit_code=exit_code(pytest_status, final),
            tree=self.tree_at_end(),
            conditions=final,
            precision=coverage.precision if coverage else 0,
            base=setup.base,
        )

    def coverage_facts(self) -> CoverageFacts | None:
        plugin = self.config.pluginmanager.getplugin("_cov")
        cov = getattr(getattr(plugin, "cov_controller", None), "cov", None)
        if cov is None:
            return None
        from pytest_worktree_gates import covfacts  # coverage is only read when measured

        return covfacts.collect(cov, self.setup.config.root)

    def changed_lines(self) -> dict[str, frozenset[int]] | None:
        repo, base = self.setup.repo, self.setup.base
        if repo is None or base is None:
            return None
        return {
            os.path.realpath(repo.root / name): frozenset(lines)
            for name, lines in git.changed_lines(repo.root, base).items()
        }

    def tree_at_end(self) -> str | None:
        """The tested tree, if it was clean at the start and no tracked file changed since."""
        repo = self.setup.repo
        if repo is None or self.tree_at_start is None:
            return None
        changed = git.run(["status", "--porcelain", "--untracked-files=no"], cwd=repo.root)
        unchanged = not changed.strip() and git.head_tree(repo.root) == self.tree_at_start
        return self.tree_at_start if unchanged else None

    def record(self, result: GateResult) -> None:
        """Only a full, canonical run on a clean tree may vouch for that tree."""
        repo = self.setup.repo
        if repo is None or result.tree is None or self.setup.narrowed:
            return
        with state.connect(repo.state_dir) as connection:
            key = self.setup.config.digest()
            state.record(connection, result.to_json(), key, str(repo.git_dir))

    @pytest.hookimpl(trylast=True)  # after pytest-cov's table, next to the final line
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        name = self.setup.gate.name
        terminalreporter.section(f"worktree gates: {name}")
        if self.result is None:
            terminalreporter.write_line(
                f"gate {name} did not run: the session ended early (exit {self.status})"
            )
            return
        result = self.result
        for line in reports.table(result):
            terminalreporter.write_line(line)
        for line in reports.failure_details(result):
            terminalreporter.write_line(line)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            for line in reports.github_annotations(result):
                terminalreporter.write_line(line)
        line = summary_line(result, self.setup.gate, self.setup.narrowed)
        terminalreporter.write_line(line, bold=True, green=result.passed, red=not result.passed)


def summary_line(result: GateResult, gate_config: Gate, narrowed: bool) -> str:
    gate = result.gate
    if result.exit_code == NO_TESTS_RAN:
        selection = f" with -m {gate_config.tests!r}" if gate_config.tests else ""
        return f"gate {gate} did not run: no tests were collected{selection} (exit 5)"
    if result.passed:
        where = f" for tree {result.tree[:12]}" if result.tree else " (tree dirty: not recorded)"
        if narrowed:
            where = " (narrowed run with -k/-m/paths: not recorded)"
        return f"gate {gate} PASSED{where}"
    if result.exit_code == 1:
        return f"gate {gate} FAILED: tests failed (exit 1)"
    failed = ", ".join(c.name for c in result.conditions if not c.passed)
    return f"gate {gate} FAILED: {failed} (exit {result.exit_code})"


def _plugin_condition(condition: Any) -> Condition:
    """A plugin's condition, or a failed one that says what the plugin got wrong."""
    if isinstance(condition, Condition) and ":" in condition.name:
        return condition
    return Condition(
        name="plugin:invalid",
        actual=None,
        threshold=None,
        passed=False,
        details={"error": f"pytest_gates_conditions returned {condition!r}; "
                          "return Condition objects named '<plugin>:<name>'"},
    )  # fmt: skip
