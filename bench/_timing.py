"""Shared helpers of the benchmarks: run and time a command, summarise, print markdown.

Every benchmark runs its tools with the interpreter that runs it (the project's .venv), so the
anchor tool and ours always share one Python, one coverage.py and one pytest.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"  # gitignored: downloads, unpacked suites, synthetic repos
SCRIPTS = Path(sys.executable).parent  # the venv's bin dir, not resolved: it holds the tools

# Variables a git hook or an outer test run may export; a benchmark child must not inherit
# them, or git would read another repository and coverage would measure the wrong process.
# PYTHONDONTWRITEBYTECODE is dropped too: a developer's runs reuse their bytecode, and without
# it every run would pay for compiling the whole suite again.
LEAKY = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "COV_CORE_SOURCE",
    "COV_CORE_CONFIG",
    "COVERAGE_PROCESS_START",
    "PYTHONDONTWRITEBYTECODE",
)

# A fixed identity and no signing, so committing in a synthetic repo never asks anything.
GIT_IDENTITY = (
    "-c",
    "user.name=bench",
    "-c",
    "user.email=bench@example.invalid",
    "-c",
    "commit.gpgsign=false",
)


class CommandFailed(RuntimeError):
    """A benchmarked command exited with a code it should not have."""


def child_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in LEAKY}
    env["PATH"] = os.pathsep.join([str(SCRIPTS), env.get("PATH", "")])
    return env


def tool(name: str) -> str:
    """A console script of this venv (ruff, mypy, diff-cover, coverage)."""
    path = SCRIPTS / name
    if not path.exists():
        raise SystemExit(f"{name} is not installed in {SCRIPTS}; run: pip install -e '.[test]'")
    return str(path)


def run(argv: Sequence[str], cwd: Path, ok: Sequence[int] = (0,)) -> str:
    """Run a command, return its stdout, and fail loudly on an unexpected exit code."""
    done = subprocess.run(
        list(argv), cwd=cwd, env=child_env(), capture_output=True, text=True, check=False
    )
    if done.returncode not in ok:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        raise CommandFailed(f"{' '.join(argv)} exited {done.returncode} in {cwd}:\n{tail}")
    return done.stdout


def timed(argv: Sequence[str], cwd: Path, ok: Sequence[int] = (0,)) -> float:
    """Wall time of one run of a command, in seconds."""
    start = time.perf_counter()
    run(argv, cwd, ok)
    return time.perf_counter() - start


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_cpu(argv: Sequence[str], cwd: Path, ok: Sequence[int] = (0,)) -> tuple[float, float]:
    """(wall, cpu) seconds of one run; CPU time (user + sys of the command and the children it
    waited for) barely moves when other work shares the machine, wall time does."""
    cpu_before, start = children_cpu(), time.perf_counter()
    run(argv, cwd, ok)
    return time.perf_counter() - start, children_cpu() - cpu_before


def git(cwd: Path, *args: str) -> str:
    return run(["git", *GIT_IDENTITY, *args], cwd)


@dataclass
class Samples:
    """The timings of one measured thing, in seconds."""

    label: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def row(self, unit: str = "s") -> list[str]:
        scale = 1000.0 if unit == "ms" else 1.0
        shown = [self.median, min(self.values), max(self.values)]
        return [self.label, str(len(self.values)), *(f"{value * scale:.3f}" for value in shown)]


@dataclass
class Timings:
    """Wall and CPU samples of one measured thing."""

    label: str
    wall: Samples = field(init=False)
    cpu: Samples = field(init=False)

    def __post_init__(self) -> None:
        self.wall = Samples(self.label)
        self.cpu = Samples(self.label)

    def add(self, wall_and_cpu: tuple[float, float]) -> None:
        wall, cpu = wall_and_cpu
        self.wall.values.append(wall)
        self.cpu.values.append(cpu)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def samples_table(samples: Sequence[Samples], unit: str = "s", what: str = "") -> str:
    kind = f"{what} " if what else ""
    headers = [
        "measured",
        "runs",
        f"median {kind}({unit})",
        f"min {kind}({unit})",
        f"max {kind}({unit})",
    ]
    return table(headers, [sample.row(unit) for sample in samples])


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


LOAD_AT_START = os.getloadavg()[0]  # before this benchmark put any load of its own


def machine() -> Mapping[str, str]:
    """What a reader needs to compare these numbers with their own.

    The load average says whether other work shared the machine: on two cores, anything else
    running slows wall times and takes away the second core that concurrency needs.
    """
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": str(os.cpu_count()),
        "load average (1 min) at start": f"{LOAD_AT_START:.2f}",
        "at end": f"{os.getloadavg()[0]:.2f}",
    }


def print_machine() -> None:
    print("\nmachine: " + ", ".join(f"{key} {value}" for key, value in machine().items()))
