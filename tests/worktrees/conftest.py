"""The fixtures every lifecycle test module shares: a tiny real project and the CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.worktrees.helpers import Runner, make_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("COVERAGE_FILE", raising=False)
    return make_project(tmp_path / "proj")


@pytest.fixture
def wtg(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Runner:
    return Runner(monkeypatch, capfd)
