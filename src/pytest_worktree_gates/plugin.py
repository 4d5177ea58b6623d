"""The pytest plugin: ``pytest --gates[=GATE]`` (registered under the ``pytest11`` entry point).

Thin on purpose, and cheap when ``--gates`` is not given: it validates the options before
anything runs and arms coverage; :mod:`pytest_worktree_gates.session` does the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_worktree_gates import hookspecs
from pytest_worktree_gates.errors import GatesError

if TYPE_CHECKING:
    from pytest_worktree_gates.session import GateSetup

setup_key: pytest.StashKey[GateSetup] = pytest.StashKey()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)
    # The database fixtures; the module is cheap to import and looks up servers only on use.
    from pytest_worktree_gates.databases import fixtures

    pluginmanager.register(fixtures, "worktree-gates-databases")
    from pytest_worktree_gates import appfixture

    pluginmanager.register(appfixture, "worktree-gates-app")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("worktree-gates", "worktree gates")
    group.addoption(
        "--gates",
        nargs="?",
        const="unit",
        default=None,
        metavar="GATE",
        help="enforce a gate (default: unit): tests, coverage, checks; exit 6 if a condition fails",
    )
    group.addoption(
        "--gates-report",
        action="append",
        default=[],
        metavar="FORMAT:PATH",
        help="also write the gate's verdict as json, junit or markdown (repeatable)",
    )
    group.addoption(
        "--gates-base",
        default=None,
        metavar="REF",
        help="base of diff coverage (default: merge-base with the configured main branch)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Any:
    """Validate and arm the gate before pytest-cov looks at its options.

    A wrapper runs ahead of every plain implementation, pytest-cov's ``tryfirst`` one included,
    so coverage of the configured source starts exactly as if ``--cov=SRC`` had been given.
    """
    options = early_config.known_args_namespace
    if getattr(options, "gates", None):
        from pytest_worktree_gates.session import prepare

        try:
            setup = prepare(early_config, options)
        except GatesError as error:
            raise pytest.UsageError(str(error)) from None
        early_config.stash[setup_key] = setup
        measured = getattr(options, "cov_source", None) or getattr(options, "no_cov", False)
        if setup.gate.coverage and hasattr(options, "cov_source") and not measured:
            options.cov_source = list(setup.config.coverage.source) or [True]
            if setup.config.coverage.branch and not options.cov_branch:
                options.cov_branch = True
        # The gate judges coverage; pytest-cov's own fail-under would turn a coverage shortfall
        # into exit 1 and make a gate failure look like a test failure.
        options.cov_fail_under = 0
    # Before any conftest is imported: apps that read settings at import time see our databases.
    from pytest_worktree_gates.databases.fixtures import export_env

    export_env(early_config)
    return (yield)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: a test for the integration gate")
    setup = config.stash.get(setup_key, None)
    if setup is None:
        return
    user_markexpr = config.option.markexpr
    if setup.gate.tests:
        config.option.markexpr = (
            f"({setup.gate.tests}) and ({user_markexpr})" if user_markexpr else setup.gate.tests
        )
    if not hasattr(config, "workerinput"):  # xdist workers only run tests
        from pytest_worktree_gates.session import GateSession

        config.pluginmanager.register(GateSession(config, setup), "worktree-gates-session")
