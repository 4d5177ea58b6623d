"""Do the gate's checks (ruff, mypy) really run alongside the tests?

A synthetic project (a package of 100 typed modules, a test module for each, tests that take a
couple of seconds under coverage) configures ruff and mypy as the checks ``lint`` and ``types``.
Three things are timed, alternating round by round:

- tests alone: ``pytest --gates=tests-only``, the same gate with ``checks = []``;
- checks alone: the gate's own check runner starting both commands at once, as the gate does;
- the full gate: ``pytest --gates``.

With a cold mypy cache (a fresh worktree) and a warm one (the next run in the same worktree).

    .venv/bin/python bench/checks_concurrency.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _timing import (
    CACHE,
    Timings,
    child_env,
    children_cpu,
    git,
    print_machine,
    run,
    samples_table,
    timed_cpu,
    verdict,
)

from pytest_worktree_gates import checkrun
from pytest_worktree_gates.config import load

PROJECT = CACHE / "checks-project"
MODULES = 100
CHURN = 12_000  # loop rounds per test module: a couple of seconds of tests in all
TARGET = 1.1
CACHES = (".mypy_cache", ".ruff_cache")
CHECK_PROGRAMS = ("ruff", "mypy")

PYPROJECT = """\
[project]
name = "proj"
version = "0"

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 100

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP"]

[tool.mypy]
strict = true

[tool.worktree-gates.coverage]
source = ["proj"]
fail-under = 80

[tool.worktree-gates.gates.unit]
tests = ""
checks = ["lint", "types"]

[tool.worktree-gates.gates.tests-only]
tests = ""
coverage = true
checks = []
"""

IGNORED = ".coverage\n.mypy_cache/\n.ruff_cache/\n__pycache__/\n"

# Each module imports its predecessor, so mypy has a real import graph to follow.
MODULE = '''\
"""Module {n} of the synthetic package."""

from __future__ import annotations

from dataclasses import dataclass
{import_previous}

@dataclass(frozen=True)
class Item{n}:
    name: str
    weight: int

    def heavier(self, other: Item{n}) -> bool:
        return self.weight > other.weight


def scale_{n}(values: list[int], factor: int = {n}) -> list[int]:
    return [value * factor for value in values]


def total_{n}(items: list[Item{n}]) -> int:
    return sum(item.weight for item in items)


def combined_{n}(values: list[int]) -> int:
    return sum({previous_call})


def churn_{n}(rounds: int) -> int:
    """CPU work that stands in for a real test's."""
    acc = 0
    for step in range(rounds):
        acc = (acc * 31 + step) % 1_000_003
    return acc
'''

TEST = """\
from __future__ import annotations

from proj.mod_{n:03d} import Item{n}, churn_{n}, combined_{n}, scale_{n}, total_{n}


def test_scale() -> None:
    assert scale_{n}([1, 2]) == [{n}, {twice}]


def test_total_and_heavier() -> None:
    light, heavy = Item{n}("a", 1), Item{n}("b", 2)
    assert total_{n}([light, heavy]) == 3
    assert heavy.heavier(light)


def test_combined() -> None:
    assert combined_{n}([1]) >= 0


def test_churn() -> None:
    assert churn_{n}({churn}) >= 0
"""


def module_source(number: int) -> str:
    if number == 0:
        return MODULE.format(n=0, import_previous="", previous_call="values")
    previous = number - 1
    return MODULE.format(
        n=number,
        import_previous=f"\nfrom proj.mod_{previous:03d} import scale_{previous}\n",
        previous_call=f"scale_{previous}(values)",
    )


def build_project() -> None:
    """The synthetic project as a committed git repo: the gate checks tracked files."""
    shutil.rmtree(PROJECT, ignore_errors=True)
    package, tests = PROJECT / "proj", PROJECT / "tests"
    package.mkdir(parents=True)
    tests.mkdir()
    (PROJECT / "pyproject.toml").write_text(PYPROJECT)
    (PROJECT / ".gitignore").write_text(IGNORED)
    (package / "__init__.py").write_text("")
    (package / "py.typed").write_text("")
    for number in range(MODULES):
        (package / f"mod_{number:03d}.py").write_text(module_source(number))
        test = TEST.format(n=number, twice=2 * number, churn=CHURN)
        (tests / f"test_mod_{number:03d}.py").write_text(test)
    git(PROJECT, "init", "--quiet", "--initial-branch=main")
    git(PROJECT, "add", "--all")
    git(PROJECT, "commit", "--quiet", "--message", "synthetic project")


def forget_caches() -> None:
    """A fresh worktree: no mypy or ruff cache yet."""
    for name in CACHES:
        shutil.rmtree(PROJECT / name, ignore_errors=True)


def pytest_gate(gate: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--gates={gate}"]


def checks_alone() -> tuple[float, float]:
    """Both checks started at once and awaited, through the gate's own runner: (wall, CPU)."""
    config = load(PROJECT)
    checks = [config.checks[name] for name in config.gate("unit").checks]
    cpu_before, start = children_cpu(), time.perf_counter()
    facts = [running.finish() for running in checkrun.start(checks, PROJECT)]
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu_before
    broken = [fact for fact in facts if fact.errors or not fact.files]
    if broken:
        raise SystemExit(f"the synthetic project does not pass its checks: {broken}")
    return wall, cpu


def verify() -> None:
    """One untimed full gate: it must pass with both checks over every tracked file."""
    out = run(pytest_gate("unit"), PROJECT)
    if "gate unit PASSED" not in out or "check:types" not in out:
        raise SystemExit(f"the full gate did not pass:\n{out[-3000:]}")


def measure(rounds: int) -> dict[str, Timings]:
    timings = {
        "tests": Timings("tests alone: `pytest --gates=tests-only`"),
        "checks-cold": Timings("checks alone, cold mypy cache"),
        "full-cold": Timings("full gate `pytest --gates`, cold mypy cache"),
        "checks-warm": Timings("checks alone, warm mypy cache"),
        "full-warm": Timings("full gate `pytest --gates`, warm mypy cache"),
    }
    for number in range(rounds):
        timings["tests"].add(timed_cpu(pytest_gate("tests-only"), PROJECT))
        forget_caches()
        timings["checks-cold"].add(checks_alone())
        forget_caches()
        timings["full-cold"].add(timed_cpu(pytest_gate("unit"), PROJECT))
        # Both caches are warm now, from the full gate's own run.
        timings["checks-warm"].add(checks_alone())
        timings["full-warm"].add(timed_cpu(pytest_gate("unit"), PROJECT))
        print(f"round {number + 1}/{rounds} done", file=sys.stderr, flush=True)
    return timings


def check_children(pid: int) -> set[str]:
    """The check programs running as children of a process, read from /proc (Linux only)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return set()
    found: set[str] = set()
    for child in children:
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # it ended between the two reads
        # A script's interpreter comes first (python .../bin/mypy), a binary's name (ruff) first.
        found |= {Path(os.fsdecode(arg)).name for arg in argv[:2]} & set(CHECK_PROGRAMS)
    return found


def timeline() -> dict[str, list[float]]:
    """When each check ran inside one full gate with cold caches, in seconds from its start.

    Sampled from outside every 10 ms. It shows whether the checks overlap the tests even when
    other work on the machine takes the spare core that would turn overlap into saved time.
    """
    forget_caches()
    start = time.perf_counter()
    process = subprocess.Popen(
        pytest_gate("unit"),
        cwd=PROJECT,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: dict[str, list[float]] = {}
    while process.poll() is None:
        now = time.perf_counter() - start
        for name in check_children(process.pid):
            seen.setdefault(name, [now, now])[1] = now
        time.sleep(0.01)
    seen["pytest --gates"] = [0.0, time.perf_counter() - start]
    return seen


def timeline_line(seen: dict[str, list[float]]) -> str:
    spans = [f"{name} +{first:.2f} s to +{last:.2f} s" for name, (first, last) in seen.items()]
    missing = [name for name in CHECK_PROGRAMS if name not in seen]
    note = f" ({', '.join(missing)}: finished between two 10 ms samples)" if missing else ""
    return f"- one full gate, cold caches, sampled every 10 ms: {'; '.join(spans)}{note}"


def target_line(timings: dict[str, Timings], cache: str) -> str:
    tests, checks = timings["tests"].wall.median, timings[f"checks-{cache}"].wall.median
    full = timings[f"full-{cache}"].wall.median
    ratio = full / max(tests, checks)
    serial = full / (tests + checks)
    return (
        f"- {cache} mypy cache: full / max(tests, checks) = **{ratio:.3f}** "
        f"(target <= {TARGET}: {verdict(ratio <= TARGET)}); "
        f"full / (tests + checks) = {serial:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="do the gate's checks run alongside the tests")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    build_project()
    verify()
    timings = measure(args.rounds)
    print(f"## Checks run alongside the tests: {MODULES} modules, ruff + mypy\n")
    print(samples_table([timing.wall for timing in timings.values()], what="wall"))
    print()
    print(samples_table([timing.cpu for timing in timings.values()], what="CPU"))
    print()
    print(target_line(timings, "cold"))
    print(target_line(timings, "warm"))
    print(timeline_line(timeline()))
    print_machine()


if __name__ == "__main__":
    main()
