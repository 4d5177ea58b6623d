"""Diff coverage of 1,000 added lines: our computation against diff-cover on the same data.

A synthetic git repo gets a ``main`` branch and a ``feature`` branch that adds exactly 1,000
lines (to existing modules and in new ones), then coverage data from running part of the code.
Ours is what ``pytest --gates`` does for ``coverage.diff``: merge-base and changed lines from
git, per-file facts from the coverage data, then the condition. It is timed inside this process
(as the plugin pays it: everything already imported) and as a fresh process (as a CLI would pay
it), against ``coverage xml`` and ``diff-cover coverage.xml --compare-branch=main``.

    .venv/bin/python bench/diff_speed.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _timing import (
    CACHE,
    Samples,
    git,
    print_machine,
    run,
    samples_table,
    timed,
    tool,
    verdict,
)

from pytest_worktree_gates import covfacts
from pytest_worktree_gates import git as gitfacts
from pytest_worktree_gates.gates.conditions import coverage_diff
from pytest_worktree_gates.gates.model import Condition

REPO = CACHE / "diff-repo"
ADDED_LINES = 1000
OLD_MODULES = 50  # each gets one new 10-line function appended: 500 lines
NEW_MODULES = 5  # each holds ten new 10-line functions: 500 lines
TARGET_SECONDS = 0.1
TARGET_SHARE = 0.5  # of diff-cover's time
FAIL_UNDER = 80.0  # any threshold: the time does not depend on it

IGNORED = ".coverage\ncoverage.xml\ndiff-cover.json\nexercise.py\n__pycache__/\n"

# Runs part of the code, so the diff has covered, partly covered and missed lines and both
# tools must agree on a percentage that is neither 0 nor 100.
EXERCISE = f"""\
import importlib

for number in range({OLD_MODULES}):
    module = importlib.import_module(f"app.mod_{{number:02d}}")
    getattr(module, f"base_{{number}}_0")(1)
    feature = getattr(module, f"feature_{{number}}")
    if number % 3 == 0:
        feature(100)  # the early return only
    elif number % 3 == 1:
        feature(0)  # the loop
for number in range({NEW_MODULES}):
    module = importlib.import_module(f"app.new_{{number}}")
    for index in range(10):
        feature = getattr(module, f"new_{{number}}_{{index}}")
        if index % 3 == 0:
            feature(100)
        elif index % 3 == 1:
            feature(0)
"""


def old_module(number: int) -> str:
    functions = (
        f"def base_{number}_{index}(value: int) -> int:\n    return value * {index}\n"
        for index in range(5)
    )
    return "\n\n".join(functions)


def feature_function(name: str, k: int) -> str:
    """Ten lines: two blank ones, a docstring, and seven coverable statements."""
    return (
        f"\n\ndef {name}(value: int) -> int:\n"
        '    """Added on the feature branch."""\n'
        f"    if value > {k}:\n"
        f"        return value - {k}\n"
        "    total = value\n"
        f"    for step in range({k}):\n"
        "        total += step\n"
        "    return total\n"
    )


def build_repo() -> None:
    """The synthetic repo, rebuilt every run so its content never depends on a past one."""
    shutil.rmtree(REPO, ignore_errors=True)
    package = REPO / "app"
    package.mkdir(parents=True)
    (REPO / ".gitignore").write_text(IGNORED)
    (package / "__init__.py").write_text("")
    for number in range(OLD_MODULES):
        (package / f"mod_{number:02d}.py").write_text(old_module(number))
    git(REPO, "init", "--quiet", "--initial-branch=main")
    git(REPO, "add", "--all")
    git(REPO, "commit", "--quiet", "--message", "base")
    git(REPO, "checkout", "--quiet", "-b", "feature")
    for number in range(OLD_MODULES):
        with (package / f"mod_{number:02d}.py").open("a") as handle:
            handle.write(feature_function(f"feature_{number}", number % 10))
    for number in range(NEW_MODULES):
        body = "".join(feature_function(f"new_{number}_{index}", index) for index in range(10))
        (package / f"new_{number}.py").write_text(body)
    git(REPO, "add", "--all")
    git(REPO, "commit", "--quiet", "--message", "feature: 1,000 added lines")
    numstat = git(REPO, "diff", "--numstat", "main").splitlines()
    added = sum(int(line.split()[0]) for line in numstat)
    if added != ADDED_LINES:
        raise SystemExit(f"the synthetic diff adds {added} lines, not {ADDED_LINES}")
    (REPO / "exercise.py").write_text(EXERCISE)
    run([tool("coverage"), "run", "--source=app", "exercise.py"], REPO)


@dataclass(frozen=True)
class Ours:
    """One timed run of our computation, split into its steps (seconds)."""

    git: float
    facts: float
    condition: float
    result: Condition


def ours_once(root: Path) -> Ours:
    """The plugin's steps: merge-base, changed lines keyed by real path, facts, the condition.

    The plugin collects facts from pytest-cov's live ``Coverage`` object; here they come from
    the data file, through the package's own loader, which adds the (small) cost of reading it.
    """
    start = time.perf_counter()
    base = gitfacts.merge_base(root, "main")
    changed = {
        os.path.realpath(root / name): frozenset(lines)
        for name, lines in gitfacts.changed_lines(root, base).items()
    }
    after_git = time.perf_counter()
    facts = covfacts.load_facts(root)
    after_facts = time.perf_counter()
    result = coverage_diff(facts, changed, FAIL_UNDER)
    end = time.perf_counter()
    return Ours(after_git - start, after_facts - after_git, end - after_facts, result)


def once_in_fresh_process() -> None:
    """``--once``: one computation in a new interpreter, as a command line tool would run it."""
    print(f"coverage.diff: {ours_once(Path.cwd()).result.actual}")


def fresh_process() -> float:
    return timed([sys.executable, str(Path(__file__).resolve()), "--once"], REPO)


def diff_cover() -> float:
    return timed([tool("diff-cover"), "coverage.xml", "--compare-branch=main"], REPO)


def coverage_xml() -> float:
    return timed([tool("coverage"), "xml", "--quiet", "-o", "coverage.xml"], REPO)


def measure(rounds: int) -> dict[str, Samples]:
    """Every measured step, interleaved round by round so drift hits them all alike."""
    labels = {
        "git": "ours: merge-base + changed lines (git)",
        "condition": "ours: `coverage_diff` condition",
        "diff": "**ours: diff computation (git + condition)**",
        "facts": "ours: facts collection (`covfacts.load_facts`)",
        "total": "**ours: total, in process (diff computation + facts)**",
        "fresh": "ours: total, fresh interpreter (`python bench/diff_speed.py --once`)",
        "xml": "`coverage xml`",
        "diff-cover": "**`diff-cover coverage.xml --compare-branch=main`**",
        "both": "`coverage xml` + `diff-cover`",
    }
    samples = {key: Samples(label) for key, label in labels.items()}
    ours_once(REPO)  # untimed: the plugin's process has imported everything already
    for _ in range(rounds):
        step = ours_once(REPO)
        diff = step.git + step.condition
        values = {
            "git": step.git,
            "condition": step.condition,
            "diff": diff,
            "facts": step.facts,
            "total": diff + step.facts,
            "fresh": fresh_process(),
            "xml": coverage_xml(),
            "diff-cover": diff_cover(),
        }
        values["both"] = values["xml"] + values["diff-cover"]
        for key, value in values.items():
            samples[key].values.append(value)
    return samples


def agreement() -> tuple[str, bool]:
    """Both tools' figures on the same data, and whether they agree exactly."""
    ours = ours_once(REPO).result
    exact = ["--total-percent-float", "--format", "json:diff-cover.json"]
    run([tool("diff-cover"), "coverage.xml", "--compare-branch=main", *exact], REPO)
    theirs = json.loads((REPO / "diff-cover.json").read_text())
    lines, missing = theirs["total_num_lines"], theirs["total_num_violations"]
    their_percent = 100.0 * (lines - missing) / lines
    same = (lines, lines - missing) == (ours.details["lines"], ours.details["covered"])
    same = same and abs(their_percent - float(ours.actual or 0)) < 1e-9
    text = (
        f"ours {ours.actual:.4f} % ({ours.details['covered']} of {ours.details['lines']} "
        f"coverable changed lines covered); diff-cover {their_percent:.4f} % "
        f"({lines - missing} of {lines}, it prints {theirs['total_percent_covered']} %)"
    )
    return text, same


def judged(label: str, ours: float, theirs: float, theirs_label: str) -> str:
    """One line: our time, both targets, and the ratio they rest on."""
    fast = verdict(ours <= TARGET_SECONDS)
    share = ours / theirs
    return (
        f"- {label}: {ours * 1000:.1f} ms (target <= {TARGET_SECONDS * 1000:.0f} ms: {fast}); "
        f"/ {theirs_label} = **{share:.3f}** (target < {TARGET_SHARE}: "
        f"{verdict(share < TARGET_SHARE)})"
    )


def report(samples: dict[str, Samples]) -> None:
    median = {key: sample.median for key, sample in samples.items()}
    print(f"## Diff coverage of {ADDED_LINES} added lines: ours vs diff-cover\n")
    print(samples_table(list(samples.values()), unit="ms"))
    print()
    # The gate collects coverage facts for coverage.total anyway: diff coverage adds git and
    # the condition. diff-cover likewise needs coverage.xml, which `coverage xml` writes.
    print(judged("ours, diff computation", median["diff"], median["diff-cover"], "diff-cover"))
    print(judged("ours, with facts", median["total"], median["diff-cover"], "diff-cover"))
    both = median["total"] / median["both"]
    print(f"- ours with facts / (`coverage xml` + diff-cover): {both:.3f}")
    fresh = median["fresh"] / median["both"]
    print(f"- fresh interpreters: ours / (`coverage xml` + diff-cover) = {fresh:.3f}")
    text, same = agreement()
    print(f"- same percentage: {'yes' if same else 'NO'}: {text}")
    print_machine()


def main() -> None:
    parser = argparse.ArgumentParser(description="diff coverage speed: ours vs diff-cover")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.once:
        once_in_fresh_process()
        return
    build_repo()
    report(measure(args.rounds))


if __name__ == "__main__":
    main()
