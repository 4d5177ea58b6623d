"""Small real projects for pytester runs of `pytest --gates`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import commit_all, init_repo

CALC = """
def add(a, b):
    return a + b


def sub(a, b):
    return a - b


def div(a, b):
    if b == 0:
        raise ZeroDivisionError("b")
    return a / b
"""

TESTS = """
import pytest

from app.calc import add, div, sub


def test_add():
    assert add(1, 2) == 3


def test_sub():
    assert sub(3, 2) == 1


def test_div():
    assert div(4, 2) == 2


@pytest.mark.integration
def test_div_by_zero_integration():
    with pytest.raises(ZeroDivisionError):
        div(1, 0)
"""

NO_CHECKS = """
[tool.worktree-gates.gates.unit]
checks = []
[tool.worktree-gates.gates.final]
checks = []
"""


def make_project(
    pytester: pytest.Pytester, coverage: str = "", extra: str = "", tests: str = TESTS
) -> Path:
    """A package ``app`` with tests; ``coverage`` goes into the coverage table."""
    pytester.makepyprojecttoml(
        '[tool.worktree-gates.coverage]\nsource = ["app"]\n' + coverage + NO_CHECKS + extra
    )
    pytester.mkpydir("app")
    (pytester.path / "app" / "calc.py").write_text(CALC)
    pytester.makepyfile(test_calc=tests)
    return pytester.path


def json_report(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    report = pytester.path / "gate.json"
    result = pytester.runpytest(*args, f"--gates-report=json:{report}")
    return result, json.loads(report.read_text())


def condition(report: dict, name: str) -> dict:
    return next(item for item in report["conditions"] if item["name"] == name)


def in_git_repo(pytester: pytest.Pytester, coverage: str = "") -> Path:
    root = make_project(pytester, coverage)
    (root / ".gitignore").write_text(".coverage*\n__pycache__/\n*.json\n*.xml\n")
    init_repo(root)
    commit_all(root, "base")
    return root
