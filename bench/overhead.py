"""Overhead of ``pytest --gates`` over plain pytest-cov on a real third-party test suite.

The suite is more-itertools' own (pure Python, several hundred tests), fetched as a pinned sdist.
The gate is configured to do the anchor's job and nothing more: coverage of the package with a
fail-under of 80 and no checks. The anchor is ``pytest --cov=PKG --cov-fail-under=80`` with this
plugin blocked (``-p no:worktree_gates``), so the ratio includes the cost of importing the plugin.

    .venv/bin/python bench/overhead.py [--rounds N]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tarfile
import time
from pathlib import Path

from _timing import (
    CACHE,
    Samples,
    Timings,
    git,
    print_machine,
    run,
    samples_table,
    timed_cpu,
    verdict,
)

from pytest_worktree_gates import covfacts

PROJECT = "more-itertools"
VERSION = "10.5.0"
PACKAGE = "more_itertools"
SDIST = f"{PROJECT}-{VERSION}.tar.gz"
# Pinned so every run measures the same code; pip verifies nothing for a plain download.
SHA256 = "5482bfef7849c25dc3c6dd53a6173ae4795da2a41a80faea6700d9f5846c5da6"
TARGET = 1.05

GATE_CONFIG = f"""
# Added by bench/overhead.py. An (empty) pytest section makes this directory pytest's rootdir,
# for both commands alike, instead of any enclosing project's.
[tool.pytest.ini_options]

# The gate does exactly what the anchor command does.
[tool.worktree-gates.coverage]
source = ["{PACKAGE}"]
fail-under = 80

[tool.worktree-gates.gates.unit]
tests = ""
checks = []
"""

COMMON = ["-m", "pytest", "-p", "no:cacheprovider", "-q"]
ANCHOR = [*COMMON, "-p", "no:worktree_gates", f"--cov={PACKAGE}", "--cov-fail-under=80"]
GATE = [*COMMON, "--gates"]


def download() -> Path:
    """The pinned sdist, downloaded once into the cache and checked against its hash."""
    downloads = CACHE / "downloads"
    sdist = downloads / SDIST
    if not sdist.exists():
        downloads.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        run([*pip, "--dest", str(downloads), f"{PROJECT}=={VERSION}"], CACHE)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{sdist}: sha256 {digest} is not the pinned {SHA256}; delete it")
    return sdist


def unpack(sdist: Path) -> Path:
    """The sdist's tree as a committed git repo with the gate configured.

    A real project is a git repo, and the gate does git work there (tree hash, ledger record),
    so the benchmark pays for that too. Its own repo also keeps the gate from treating this
    cache as part of the enclosing checkout.
    """
    project = CACHE / f"{PROJECT}-{VERSION}"
    if (project / ".git").is_dir():
        return project
    shutil.rmtree(project, ignore_errors=True)  # a half-built tree from an interrupted run
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        if f"{PROJECT}-{VERSION}/tests/test_more.py" not in names:
            raise SystemExit(f"{SDIST} has no tests/test_more.py; pick another version")
        archive.extractall(CACHE, filter="data")
    with (project / "pyproject.toml").open("a") as handle:
        handle.write(GATE_CONFIG)
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", f"{PROJECT} {VERSION} sdist")
    return project


def warm_up(project: Path) -> str:
    """One untimed run of each, so bytecode and the page cache are warm for both."""
    out = run([sys.executable, *ANCHOR], project)
    summary = out.strip().splitlines()[-1]
    if " passed" not in summary or "failed" in summary:
        raise SystemExit(f"the {PROJECT} suite does not pass here: {summary}")
    gate_out = run([sys.executable, *GATE], project)
    # The gate must have judged coverage, or it would have done less work than the anchor.
    if "gate unit PASSED" not in gate_out or "coverage.total" not in gate_out:
        raise SystemExit(f"the gate did not pass on {PROJECT}:\n{gate_out[-2000:]}")
    return summary


def measure(project: Path, rounds: int) -> tuple[Timings, Timings]:
    """Alternate the two commands, swapping which goes first, so drift hits both alike."""
    anchor = Timings(f"`pytest --cov={PACKAGE} --cov-fail-under=80` (anchor)")
    gate = Timings("`pytest --gates`")
    pair = ((anchor, ANCHOR), (gate, GATE))
    for number in range(rounds):
        for timings, argv in pair if number % 2 == 0 else reversed(pair):
            timings.add(timed_cpu([sys.executable, *argv], project))
        last = f"anchor {anchor.wall.values[-1]:.2f} s, gate {gate.wall.values[-1]:.2f} s"
        print(f"round {number + 1}/{rounds}: {last}", file=sys.stderr, flush=True)
    return anchor, gate


def analysis_cost(project: Path, rounds: int = 5) -> float:
    """Median seconds of the gate's own per-file coverage analysis on this suite's data.

    pytest-cov has analysed every file for its report already; the gate analyses them again to
    get per-file facts: the largest part of what the gate adds on a suite without checks.
    """
    values = []
    for _ in range(rounds):
        start = time.perf_counter()
        covfacts.load_facts(project)
        values.append(time.perf_counter() - start)
    return statistics.median(values)


def ratios(gate: Samples, anchor: Samples) -> tuple[float, float]:
    """The ratio of the medians, and the median of the paired per-round ratios."""
    paired = [ours / theirs for ours, theirs in zip(gate.values, anchor.values, strict=True)]
    return gate.median / anchor.median, statistics.median(paired)


def main() -> None:
    parser = argparse.ArgumentParser(description="overhead of pytest --gates over pytest-cov")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    project = unpack(download())
    summary = warm_up(project)
    anchor, gate = measure(project, args.rounds)
    wall, wall_paired = ratios(gate.wall, anchor.wall)
    cpu, cpu_paired = ratios(gate.cpu, anchor.cpu)
    print(f"## Overhead vs pytest-cov: {PROJECT} {VERSION} ({summary})\n")
    print(samples_table([anchor.wall, gate.wall], what="wall"))
    print()
    print(samples_table([anchor.cpu, gate.cpu], what="CPU"))
    print()
    met = verdict(wall <= TARGET)
    print(f"- wall, ratio of medians (gate / anchor): **{wall:.3f}** (target <= {TARGET}: {met})")
    print(f"- wall, median of the per-round ratios: {wall_paired:.3f}")
    print(f"- CPU, ratio of medians: {cpu:.3f}; median of the per-round ratios: {cpu_paired:.3f}")
    analysis = analysis_cost(project)
    share = analysis / anchor.wall.median
    print(
        f"- the gate's own coverage analysis: {analysis * 1000:.0f} ms ({share:.1%} of the anchor)"
    )
    print_machine()


if __name__ == "__main__":
    main()
