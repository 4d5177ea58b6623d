"""Read coverage facts out of a coverage.py ``Coverage`` object (the edge of the gate engine)."""

from __future__ import annotations

import os
from pathlib import Path

import coverage
from coverage.exceptions import NoDataError

from pytest_worktree_gates.gates.model import CoverageFacts, FileCoverage

try:
    from coverage.report_core import get_analysis_to_report
except ImportError:  # pragma: no cover - coverage < 7.3
    from coverage.report import get_analysis_to_report  # type: ignore[attr-defined,no-redef,unused-ignore]


def collect(cov: coverage.Coverage, root: Path) -> CoverageFacts:
    """Per-file numbers for exactly the files, include and omit rules `coverage report` uses.

    Names are relative to the project root, so path globs and the ratchet baseline mean the
    same thing wherever pytest was started from.
    """
    files = []
    try:
        for _reporter, analysis in get_analysis_to_report(cov, None):
            path = os.path.abspath(analysis.filename)
            files.append(
                FileCoverage(
                    path=path,
                    name=Path(os.path.relpath(path, root)).as_posix(),
                    numbers=analysis.numbers,
                    statements=frozenset(analysis.statements),
                    missing=frozenset(analysis.missing),
                )
            )
    except NoDataError:
        files = []
    precision = int(cov.config.precision)
    return CoverageFacts(tuple(files), precision, bool(cov.get_data().has_arcs()))


def load(root: Path, data_file: Path | None = None) -> coverage.Coverage:
    """The project's last coverage data, with the project's coverage configuration."""
    cov = coverage.Coverage(data_file=str(data_file or root / ".coverage"), config_file=True)
    cov.load()
    return cov
