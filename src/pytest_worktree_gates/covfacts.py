"""Read coverage facts out of a coverage.py ``Coverage`` object (the edge of the gate engine)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
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


def load_facts(root: Path, data_file: Path | None = None) -> CoverageFacts:
    """Facts from the project's last coverage data, as `coverage report` run at its root sees it.

    coverage.py reads its configuration, and resolves relative include and omit patterns,
    from the current directory, so both happen from the project root wherever we were started.
    """
    data = str((data_file or root / ".coverage").resolve())
    with _inside(root):
        cov = coverage.Coverage(data_file=data, config_file=True)
        cov.load()
        return collect(cov, root)


@contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)
