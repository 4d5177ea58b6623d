"""The ``worktree_app`` fixture: the app that a gate with a ``serve`` table started.

Cheap to import: every pytest run registers it. The gate's controller starts the one server of
the run and tells its tests about it through the environment, which xdist workers inherit
because they are spawned after the server is up; so a worker needs no lock, lease or config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

URL_VARIABLE = "WORKTREE_APP_URL"
LOG_VARIABLE = "WORKTREE_GATES_APP_LOG"  # where the app's output goes
DOWN_VARIABLE = "WORKTREE_GATES_APP_DOWN"  # why the app is not serving, when it is not
SERVER_VARIABLE = "WORKTREE_GATES_APP_SERVER"  # the pid of the process that serves the app
VARIABLES = (URL_VARIABLE, LOG_VARIABLE, DOWN_VARIABLE, SERVER_VARIABLE)


def served_by_parent() -> bool:
    """This process is an xdist worker of a gate run that serves the app.

    xdist sets ``workerinput`` only after a worker's options are parsed, too late for the port
    to be leased before its conftests are imported; a worker is the serving process's child.
    """
    return os.environ.get(SERVER_VARIABLE) == str(os.getppid())


@dataclass(frozen=True)
class WorktreeApp:
    """The served app: ``url`` (``http://127.0.0.1:PORT``), ``port``, and its ``logs``."""

    url: str
    port: int
    log: Path

    @property
    def logs(self) -> str:
        """Everything the app has printed so far (stdout and stderr)."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def _serves(config: pytest.Config) -> bool:
    """This run is a gate that serves the app (controller or xdist worker alike)."""
    from pytest_worktree_gates.plugin import setup_key

    setup = config.stash.get(setup_key, None)
    return setup is not None and setup.gate.serve is not None


@pytest.fixture(scope="session")
def worktree_app(request: pytest.FixtureRequest) -> WorktreeApp:
    """The app served for this gate run, on the worktree's own port."""
    url = os.environ.get(URL_VARIABLE, "")
    down = os.environ.get(DOWN_VARIABLE)
    if not _serves(request.config) or not url:
        problem = (
            "no app is served in this run; run a gate that has a serve table, for example "
            "`pytest --gates=integration` with [tool.worktree-gates.gates.integration.serve]"
        )
    elif down:
        problem = down
    else:
        port = urlsplit(url).port or 0
        return WorktreeApp(url, port, Path(os.environ.get(LOG_VARIABLE, os.devnull)))
    pytest.fail(f"worktree-gates: {problem}", pytrace=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An app that did not start leaves nothing to test against: skip, do not fail, the tests.

    The gate fails on its own ``serve.health`` condition (exit 6), with the app's output.
    """
    down = os.environ.get(DOWN_VARIABLE)
    if not down or not _serves(config):
        return
    skip = pytest.mark.skip(reason=f"worktree-gates: {down}")
    for item in items:
        item.add_marker(skip)
