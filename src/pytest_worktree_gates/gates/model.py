"""The facts a gate is evaluated on and the verdict it gives: plain, frozen data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing coverage costs ~80 ms, which a git hook must not pay
    from coverage.results import Numbers

# Exit codes of `pytest --gates` (DESIGN.md): 0 and pytest's own, plus one for a gate failure.
EXIT_GATE_FAILED = 6


@dataclass(frozen=True)
class Condition:
    """One line of a verdict: what was measured, against what, and whether it passed."""

    name: str
    actual: float | int | None
    threshold: float | int | None
    passed: bool
    details: Mapping[str, Any] = field(default_factory=dict)
    percent: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "actual": self.actual,
            "threshold": self.threshold,
            "passed": self.passed,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class TestFacts:
    """What the test session did, counted as pytest counts it."""

    __test__ = False  # a name pytest would otherwise try to collect

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    @property
    def ran(self) -> int:
        return self.passed + self.failed + self.errors


@dataclass(frozen=True)
class FileCoverage:
    """Coverage of one measured file, exactly as `coverage report` analyses it."""

    path: str  # absolute, so it can be matched with git's repo-relative paths
    name: str  # as `coverage report` shows it
    numbers: Numbers
    statements: frozenset[int]
    missing: frozenset[int]


@dataclass(frozen=True)
class CoverageFacts:
    files: tuple[FileCoverage, ...]
    precision: int
    branch: bool
    # The total alone, as `coverage report` computed it, when no condition needs the files.
    total: float | None = None


@dataclass(frozen=True)
class CheckFacts:
    """The outcome of one configured check command."""

    name: str
    command: str
    returncode: int
    errors: int
    output: str = ""
    files: int = 0
    ran: bool = True  # False when no file matched the check's globs


@dataclass(frozen=True)
class ServeFacts:
    """How the gate's app start went: seconds to the first 2xx on its health path, or why not."""

    command: str
    url: str
    timeout: float
    seconds: float | None = None  # None when it never became healthy
    error: str = ""
    output: str = ""  # the last lines the app printed, when it failed

    @property
    def healthy(self) -> bool:
        return self.seconds is not None


@dataclass(frozen=True)
class GateFacts:
    """Everything a gate is judged on; gathered at the edges, evaluated purely."""

    gate: str
    tests: TestFacts
    coverage: CoverageFacts | None = None
    changed: Mapping[str, frozenset[int]] | None = None  # absolute path -> changed lines
    checks: tuple[CheckFacts, ...] = ()
    baseline: Mapping[str, int] | None = None  # name -> missing lines allowed
    serve: ServeFacts | None = None  # when the gate serves the app


@dataclass(frozen=True)
class GateResult:
    """The verdict of a gate, as the JSON report, the table and the ledger show it."""

    gate: str
    exit_code: int
    tree: str | None
    conditions: tuple[Condition, ...]
    precision: int = 0
    base: str | None = None

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "tree": self.tree,
            "base": self.base,
            "precision": self.precision,
            "conditions": [condition.to_json() for condition in self.conditions],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GateResult:
        return cls(
            gate=data["gate"],
            exit_code=data["exit_code"],
            tree=data.get("tree"),
            base=data.get("base"),
            precision=data.get("precision", 0),
            conditions=tuple(
                Condition(
                    name=item["name"],
                    actual=item["actual"],
                    threshold=item["threshold"],
                    passed=item["passed"],
                    details=item.get("details", {}),
                    percent=is_percent(item["name"]),
                )
                for item in data["conditions"]
            ),
        )


def is_percent(name: str) -> bool:
    """Coverage conditions are percentages, except the ratchet, which counts files."""
    return name.startswith("coverage.") and name != "coverage.ratchet"


def exit_code(pytest_status: int, conditions: tuple[Condition, ...]) -> int:
    """Tests decide first (pytest's code); only a clean test run can become a gate failure."""
    if pytest_status != 0:
        return pytest_status
    return 0 if all(condition.passed for condition in conditions) else EXIT_GATE_FAILED
