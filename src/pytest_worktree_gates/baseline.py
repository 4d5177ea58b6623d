"""The coverage ratchet's committed baseline: missing lines allowed per file.

Counting missing lines (not a percentage) is what makes deleting covered code safe: the count
of a file can only rise when new code goes untested. Loosening the baseline is allowed but must
say why, and the reason is kept in the file for review.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.gates.model import CoverageFacts

FORMAT_VERSION = 1


def read_baseline(path: Path) -> dict[str, int] | None:
    """The baseline's per-file counts, or None when the project has no baseline (ratchet off)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        if not all(isinstance(k, str) and isinstance(v, int) for k, v in files.items()):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise GatesError(
            f"{path}: not a valid coverage baseline; restore it from git, or delete it and "
            "run `worktree-gates baseline update`"
        ) from None
    return dict(files)


@dataclass(frozen=True)
class BaselineChange:
    raised: dict[str, tuple[int, int]]  # file -> (old, new): loosened, needs a reason
    lowered: dict[str, tuple[int, int]]  # file -> (old, new): tightened
    created: bool = False  # there was no baseline: nothing was loosened

    @property
    def changed(self) -> bool:
        return bool(self.raised or self.lowered)


def compare(old: Mapping[str, int], new: Mapping[str, int]) -> BaselineChange:
    raised, lowered = {}, {}
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name, 0), new.get(name, 0)
        if after > before:
            raised[name] = (before, after)
        elif after < before:
            lowered[name] = (before, after)
    return BaselineChange(raised, lowered)


def counts(facts: CoverageFacts) -> dict[str, int]:
    return {file.name: len(file.missing) for file in facts.files}


def update_baseline(path: Path, facts: CoverageFacts, reason: str | None) -> BaselineChange:
    """Write the current missing-line counts; refuse to loosen the baseline without a reason."""
    existing = read_baseline(path)
    history: list[dict[str, object]] = []
    if existing is not None:
        history = list(json.loads(path.read_text(encoding="utf-8")).get("history", []))
    current = counts(facts)
    if existing is None:
        change = BaselineChange({}, {}, created=True)
    else:
        change = compare(existing, current)
    if change.raised and not reason:
        names = ", ".join(f"{name} ({a} -> {b})" for name, (a, b) in change.raised.items())
        raise GatesError(
            f"this would allow more uncovered lines in {names}; add tests, or pass "
            "--reason 'WHY' to loosen the baseline on purpose"
        )
    if reason:
        history.append({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "reason": reason})
    document = {"version": FORMAT_VERSION, "files": current, "history": history}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return change
