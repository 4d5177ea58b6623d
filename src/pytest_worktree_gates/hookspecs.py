"""Hooks that third-party plugins (or a conftest.py) implement to add gate conditions.

Registered on pytest's own plugin manager, so any pytest plugin can implement them::

    def pytest_gates_conditions(gate, facts):
        return [Condition("myplugin:migrations", actual=0, threshold=0, passed=True)]

Condition names must be ``<plugin>:<name>``. The hook gets the same facts as the built-in
conditions and, like them, should be a pure function of those facts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_worktree_gates.config import Gate
    from pytest_worktree_gates.gates.model import Condition, GateFacts


@pytest.hookspec
def pytest_gates_conditions(gate: Gate, facts: GateFacts) -> list[Condition] | None:
    """Return extra conditions for ``gate``; every implementation's list is added."""
