"""One gate run inside pytest: decided before the first test, judged after the last.

Imported only when ``--gates`` is given, so a plain ``pytest`` run pays nothing for it.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_worktree_gates import appfixture, checkrun, git, reports, state
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
    ServeFacts,
    TestFacts,
    exit_code,
)

if TYPE_CHECKING:  # serving (http.client, the port leases) is imported only by a gate that serves
    from pytest_worktree_gates import serving

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
    unrecordable: str | None = None  # why this run cannot vouch for its tree, if it cannot
    app_port: serving.Reservation | None = None  # the served app's port, held until it listens


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
    if gate.coverage and loaded.coverage.diff_fail_under > 0:
        if repo is None:
            raise GatesError(
                f"diff coverage needs a git repository, and {loaded.root} is not inside one; "
                "run `git init`, or set diff-fail-under = 0 in [tool.worktree-gates.coverage]"
            )
        base = git.merge_base(repo.root, options.gates_base or loaded.main_branch)
    elif options.gates_base and repo is not None:
        git.resolve_commit(repo.root, options.gates_base)  # a typo is an error even when unused
    if not hasattr(early_config, "workerinput"):
        for name in gate.checks:
            checkrun.require_tool(loaded.checks[name])
    baseline = read_baseline(loaded.root / loaded.coverage.baseline) if gate.coverage else None
    setup = GateSetup(loaded, gate, report_targets, repo, base, baseline)
    setup.unrecordable = _narrowing(early_config, options, setup)
    # Under xdist the controller serves the app for every worker; see appfixture.
    if gate.serve and not appfixture.served_by_parent() and not options.collectonly:
        from pytest_worktree_gates import serving

        serving.require_program(gate, loaded.root)
        if repo is None:
            raise GatesError(
                f"gate {gate.name!r} serves the app on a port leased in the repository's state, "
                f"and {loaded.root} is not inside a git repository; run `git init`"
            )
        setup.app_port = serving.reserve(loaded, repo)
        # Before any conftest is imported: settings read at import time see the app's URL.
        os.environ[appfixture.URL_VARIABLE] = setup.app_port.url
        os.environ[appfixture.SERVER_VARIABLE] = str(os.getpid())
    return setup


# Options that make a run test less than the whole gate: such a run may not vouch for a tree.
NARROWING_FLAGS = (
    "-k", "-m", "--lf", "--last-failed", "--deselect", "--ignore", "--ignore-glob",
    "--sw", "--stepwise", "--sw-skip", "--stepwise-skip", "--sw-reset", "--stepwise-reset",
)  # fmt: skip


def _narrowing(early_config: pytest.Config, options: Any, setup: GateSetup) -> str | None:
    # What the user typed (PYTEST_ADDOPTS included) counts; the project's ini addopts are its
    # canonical run and do not.
    typed = shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    typed += [str(arg) for arg in early_config.invocation_params.args]
    for arg in typed:
        flag = arg.split("=", 1)[0]
        if flag in NARROWING_FLAGS:
            return f"narrowed by {flag}"
        if flag[:2] in ("-k", "-m") and not flag.startswith("--"):
            return f"narrowed by {flag[:2]}"
    ini_words = set(shlex.split(" ".join(early_config.getini("addopts"))))
    if any(path not in ini_words for path in getattr(options, "file_or_dir", None) or ()):
        return "narrowed to paths"
    explicit = getattr(options, "cov_source", None)
    if (
        setup.gate.coverage
        and explicit
        and sorted(map(str, explicit)) != sorted(setup.config.coverage.source)
    ):
        return "coverage measured with an explicit --cov"
    if setup.base is not None and options.gates_base:
        return "diff coverage against --gates-base"
    if setup.repo is None:
        return "not in a git repository"
    return None


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
    did_not_run: str = ""
    app: serving.Running | None = None
    served: ServeFacts | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        setup = self.setup
        if self.config.option.collectonly:
            self.did_not_run = "--collect-only runs no test"
            return
        if setup.repo is not None:
            self.tree_at_start = git.clean_tree(setup.repo.root)
        if setup.app_port is not None:
            self.serve_app(setup.app_port)
        checks = [setup.config.checks[name] for name in setup.gate.checks]
        self.running = checkrun.start(checks, setup.config.root)

    def serve_app(self, reservation: serving.Reservation) -> None:
        """Start the app and wait for its health, before xdist starts workers (they inherit
        the env set here) and before the first test."""
        from pytest_worktree_gates import serving

        serve = serving.serve_of(self.setup.gate)
        try:
            self.app = serving.start(serve, reservation, self.setup.config.root, own_group=True)
            # Stopped at the end whatever happens: sessionfinish, or unconfigure after a crash.
            self.config.add_cleanup(self.stop_app)
            self.served = serving.wait_healthy(self.app, serve)
        except OSError as error:  # the program cannot be executed
            command = shlex.join(serving.render(serve, reservation.port)[0])
            self.served = ServeFacts(
                command, reservation.url, serve.timeout, None, f"could not start: {error}"
            )
        finally:
            reservation.release()
        if self.app is not None:
            os.environ[appfixture.LOG_VARIABLE] = str(self.app.log)
        if not self.served.healthy:
            self.stop_app()  # nothing to test against: no need to keep it until the end
            os.environ[appfixture.DOWN_VARIABLE] = (
                f"the app is not serving ({self.served.error}); see serve.health in the gate table"
            )

    def stop_app(self) -> None:
        if self.app is not None:
            from pytest_worktree_gates import serving

            serving.stop(self.app)
            self.app = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self) -> None:
        # The env told this run's tests about the app; it must not leak into a later run.
        for name in appfixture.VARIABLES:
            os.environ.pop(name, None)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.outcomes.errors += 1

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # pytest 9 reports each subtest too; like pytest's summary, passes count tests, not
        # subtests, while a failing subtest still fails the run.
        if type(report).__name__ == "SubtestReport" and not report.failed:
            return
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
        self.stop_app()
        if self.did_not_run:
            return
        if exitstatus not in (0, 1, NO_TESTS_RAN):  # interrupted, internal or usage error
            for running in self.running:
                running.kill()
            self.did_not_run = f"the session ended early (exit {int(exitstatus)})"
            return
        checks = tuple(running.finish() for running in self.running)
        self.result = self.evaluate(int(exitstatus), checks)
        session.exitstatus = self.result.exit_code
        for kind, path in self.setup.reports:
            reports.write(self.result, kind, path)
        if self.result.exit_code == NO_TESTS_RAN:
            self.did_not_run = no_tests_line(self.setup)
        elif self.unrecorded_because() is None:
            try:
                self.record(self.result)
            except GatesError as error:  # the verdict stands; only its record failed
                self.setup.unrecordable = str(error)

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
            serve=self.served,
        )
        found = conditions.evaluate(setup.gate, setup.config.coverage, facts)
        found.extend(self.warnings_condition())
        found.extend(self.plugin_conditions(facts))
        final = tuple(found)
        return GateResult(
            gate=setup.gate.name,
            exit_code=exit_code(pytest_status, final),
            tree=self.tree_at_end(),
            conditions=final,
            precision=coverage.precision if coverage else 0,
            base=setup.base,
        )

    def warnings_condition(self) -> list[Condition]:
        """pytest 9 checks --max-warnings after the summary and exits 6; judge it here instead."""
        limit = getattr(self.config.option, "max_warnings", None)
        if limit is None:
            try:
                limit = self.config.getini("max_warnings")
            except ValueError:  # a pytest without --max-warnings
                return []
        if limit is None or limit == "":
            return []
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        count = len(getattr(reporter, "stats", {}).get("warnings", []))
        return [conditions.warnings(count, int(limit))]

    def plugin_conditions(self, facts: GateFacts) -> list[Condition]:
        """Third-party conditions; a broken plugin fails the gate, it does not crash it."""
        try:
            answers = self.config.hook.pytest_gates_conditions(gate=self.setup.gate, facts=facts)
        except Exception as error:  # a plugin's bug must not look like a test failure
            return [_invalid(f"pytest_gates_conditions raised {error!r}")]
        found: list[Condition] = []
        for answer in answers:
            if isinstance(answer, Condition):
                found.append(_plugin_condition(answer))
            elif isinstance(answer, (list, tuple)):
                found.extend(_plugin_condition(item) for item in answer)
            else:
                found.append(_plugin_condition(answer))
        return found

    def coverage_facts(self) -> CoverageFacts | None:
        plugin = self.config.pluginmanager.getplugin("_cov")
        cov = getattr(getattr(plugin, "cov_controller", None), "cov", None)
        if cov is None:
            return None
        reported = getattr(plugin, "cov_total", None)
        if reported is not None and self.total_is_enough():
            # pytest-cov has just analysed every file for its report; its total is the
            # float `coverage report` returns, so analysing them again would only cost time.
            return CoverageFacts((), int(cov.config.precision), False, total=float(reported))
        from pytest_worktree_gates import covfacts  # coverage is only read when measured

        return covfacts.collect(cov, self.setup.config.root)

    def total_is_enough(self) -> bool:
        """No condition or plugin of this gate needs per-file numbers."""
        coverage = self.setup.config.coverage
        return not (
            coverage.paths
            or coverage.branch
            or self.setup.base is not None
            or self.setup.baseline is not None
            or self.config.hook.pytest_gates_conditions.get_hookimpls()
        )

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

    def unrecorded_because(self) -> str | None:
        """Only a full, canonical run on a clean tree may vouch for that tree."""
        if self.setup.unrecordable:
            return self.setup.unrecordable
        if self.result is None or self.result.tree is None:
            return "uncommitted changes"
        return None

    def record(self, result: GateResult) -> None:
        repo = self.setup.repo
        assert repo is not None  # unrecorded_because() said a repo is there
        with state.connect(repo.state_dir) as connection:
            key = self.setup.config.digest()
            state.record(connection, result.to_json(), key, str(repo.git_dir))

    @pytest.hookimpl(trylast=True)  # after pytest-cov's table, next to the final line
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        name = self.setup.gate.name
        terminalreporter.section(f"worktree gates: {name}")
        result = self.result
        if result is None or self.did_not_run:
            terminalreporter.write_line(f"gate {name} did not run: {self.did_not_run}", bold=True)
            return
        for line in reports.table(result):
            terminalreporter.write_line(line)
        for line in reports.failure_details(result):
            terminalreporter.write_line(line)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            for line in reports.github_annotations(result, self.repo_prefix()):
                terminalreporter.write_line(line)
        line = summary_line(result, self.unrecorded_because())
        terminalreporter.write_line(line, bold=True, green=result.passed, red=not result.passed)

    def repo_prefix(self) -> str:
        """Where the project sits inside its repo: annotations name repo-relative paths."""
        repo = self.setup.repo
        if repo is None:
            return ""
        relative = os.path.relpath(self.setup.config.root, repo.root)
        return "" if relative == "." else Path(relative).as_posix() + "/"


def no_tests_line(setup: GateSetup) -> str:
    selection = f" by the gate's -m {setup.gate.tests!r}" if setup.gate.tests else ""
    narrowed = f", {setup.unrecordable}" if setup.unrecordable else ""
    return f"no tests were selected{selection}{narrowed} (exit {NO_TESTS_RAN})"


def summary_line(result: GateResult, unrecorded: str | None) -> str:
    gate = result.gate
    note = f" (not recorded: {unrecorded})" if unrecorded else ""
    if result.passed:
        tree = f" for tree {result.tree[:12]}" if result.tree and not unrecorded else ""
        return f"gate {gate} PASSED{tree}{note}"
    if result.exit_code == 1:
        return f"gate {gate} FAILED: tests failed (exit 1){note}"
    failed = ", ".join(c.name for c in result.conditions if not c.passed)
    return f"gate {gate} FAILED: {failed} (exit {result.exit_code}){note}"


def _invalid(error: str) -> Condition:
    return Condition("plugin:invalid", None, None, False, {"error": error})


def _plugin_condition(condition: Any) -> Condition:
    """A plugin's condition, or a failed one that says what the plugin got wrong."""
    if isinstance(condition, Condition) and ":" in condition.name:
        return condition
    return _invalid(
        f"pytest_gates_conditions returned {condition!r}; "
        "return Condition objects named '<plugin>:<name>'"
    )
