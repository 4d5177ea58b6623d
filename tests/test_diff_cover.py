"""Differential test: our diff coverage must agree with diff-cover on the same repo and data.

Each variant builds a real repo whose feature branch adds, changes and deletes functions in
several files, in commits, in the index and in the working tree; the tests cover some of the
new code. Then coverage.py measures the tests once, and both tools judge the changed lines.

diff-cover unions three diffs (committed, staged, unstaged) that number lines differently, so
a later change that shifts earlier line numbers makes it miscount. Staged and unstaged changes
are therefore only ever appended at the end of a file, where both tools must agree exactly.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_worktree_gates import config, covfacts, git
from pytest_worktree_gates.gates import conditions
from tests.conftest import commit_all, init_repo
from tests.conftest import git as run_git

MODULES = ("pkg/alpha.py", "pkg/beta.py", "pkg/sub/gamma.py")


def function(name: str, constant: int, long: bool) -> list[str]:
    """A function with a branch: one call leaves one of its returns uncovered."""
    if long:  # a statement over several lines: only its first line is coverable
        body = ["    total = (", "        x", f"        + {constant}", "    )"]
    else:
        body = [f"    total = x + {constant}"]
    # Every line is unique: with repeated lines, one diff may align them differently than
    # diff-cover's three diffs do, and both would be right.
    return [
        f"def {name}(x):",
        *body,
        f"    if total > {constant}:",
        f"        return total - {constant}",
        f"    return -x * {constant}",
    ]


@dataclass
class Module:
    path: str
    functions: list[tuple[str, int, bool]] = field(default_factory=list)

    def text(self) -> str:
        blocks = ["\n".join(function(*spec)) for spec in self.functions]
        return "\n\n\n".join(blocks) + "\n"

    def write(self, root: Path) -> None:
        target = root / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.text(), encoding="utf-8")


@dataclass
class Project:
    """A generated package and the calls its tests make."""

    rng: random.Random
    modules: dict[str, Module] = field(default_factory=dict)
    calls: list[tuple[str, str, int]] = field(default_factory=list)  # module, function, x
    counter: int = 0

    def new_function(self, module: str) -> tuple[str, int, bool]:
        self.counter += 1
        stem = Path(module).stem
        return (f"{stem}_{self.counter}", self.counter, self.rng.random() < 0.3)

    def maybe_call(self, module: str, name: str, chance: float) -> None:
        if self.rng.random() < chance:
            self.calls.append((module, name, self.rng.choice([1, -1])))

    def write(self, root: Path) -> None:
        for module in self.modules.values():
            module.write(root)
        imports = sorted({module for module, _name, _x in self.calls})
        lines = [f"import {dotted(module)}" for module in imports]
        lines += ["", "", "def test_calls():"]
        lines += [f"    {dotted(module)}.{name}({x})" for module, name, x in self.calls]
        lines += ["    assert True"]
        (root / "tests").mkdir(exist_ok=True)
        (root / "tests" / "test_pkg.py").write_text("\n".join(lines) + "\n", encoding="utf-8")


def dotted(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def build(root: Path, seed: int) -> None:
    """main, a feature branch forked from it, and main moving on after the fork."""
    project = Project(random.Random(seed))
    init_repo(root)
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "__init__.py").write_text("")
    (root / ".gitignore").write_text(".coverage*\ncoverage.*\n__pycache__/\n*.json\n")
    for path in MODULES:
        module = project.modules[path] = Module(path)
        for _ in range(3):
            spec = project.new_function(path)
            module.functions.append(spec)
            project.maybe_call(path, spec[0], 0.7)
    project.write(root)
    commit_all(root, "main")

    run_git(root, "switch", "-q", "-c", "feature/work")
    for path in MODULES:  # new functions anywhere, one changed, maybe one deleted
        functions = project.modules[path].functions
        for _ in range(project.rng.randint(1, 3)):
            spec = project.new_function(path)
            functions.insert(project.rng.randint(0, len(functions)), spec)
            project.maybe_call(path, spec[0], 0.5)
        changed = project.rng.randrange(len(functions))
        name, constant, long = functions[changed]
        functions[changed] = (name, constant + 1000, long)
        if project.rng.random() < 0.5:
            gone = functions.pop(project.rng.randrange(len(functions)))[0]
            project.calls = [call for call in project.calls if call[1] != gone]
    fresh = project.modules["pkg/fresh.py"] = Module("pkg/fresh.py")
    unused = project.modules["pkg/sub/unused.py"] = Module("pkg/sub/unused.py")
    for _ in range(2):
        spec = project.new_function(fresh.path)
        fresh.functions.append(spec)
        project.maybe_call(fresh.path, spec[0], 0.5)
        unused.functions.append(project.new_function(unused.path))  # never imported
    project.write(root)
    commit_all(root, "feature")

    # Staged but not committed, then unstaged on top: appended at the ends of files.
    for stage in ("staged", "unstaged"):
        for path in project.rng.sample(MODULES, 2):
            spec = project.new_function(path)
            project.modules[path].functions.append(spec)
            project.maybe_call(path, spec[0], 0.5)
        project.write(root)
        if stage == "staged":
            run_git(root, "add", "-A")

    # main moves on after the fork: its new lines are not the branch's changes.
    run_git(root, "stash", "-q", "--include-untracked")
    run_git(root, "switch", "-q", "main")
    (root / "pkg" / "later.py").write_text("def later():\n    return 1\n")
    beta = (root / "pkg" / "beta.py").read_text().splitlines(keepends=True)
    beta[0] = beta[0].replace("(x)", "(x, y=0)")
    (root / "pkg" / "beta.py").write_text("".join(beta))
    commit_all(root, "main moves on")
    run_git(root, "switch", "-q", "feature/work")
    run_git(root, "stash", "pop", "-q", "--index")


def child_env() -> dict[str, str]:
    """The tests' own environment, minus any coverage measurement of this suite itself."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("COVERAGE_", "COV_CORE_"))
    }


def tool(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=root, env=child_env(), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def diff_cover(root: Path, *options: str) -> dict[str, object]:
    report = root / f"diff-cover{len(options)}.json"
    tool(
        root,
        sys.executable,
        "-m",
        "diff_cover.diff_cover_tool",
        "coverage.xml",
        "--compare-branch=main",
        f"--format=json:{report}",
        *options,
    )
    data: dict[str, object] = json.loads(report.read_text())
    return data


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_diff_coverage_agrees_with_diff_cover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    build(real, seed)
    # One variant works through a symlinked path, as macOS's /tmp is.
    root = real
    if seed == 4:
        root = tmp_path / "link"
        root.symlink_to(real, target_is_directory=True)
    staged = run_git(root, "diff", "--cached", "--name-only").split()
    unstaged = run_git(root, "diff", "--name-only").split()
    assert staged and unstaged  # the variant really has both kinds of uncommitted change
    # main moved on: measuring from its tip instead of the merge-base would differ
    base = git.merge_base(root, "main")
    assert git.changed_lines(root, "main") != git.changed_lines(root, base)

    tool(
        root,
        sys.executable,
        "-m",
        "coverage",
        "run",
        "--source=pkg",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests",
    )
    tool(root, sys.executable, "-m", "coverage", "xml", "-o", "coverage.xml")
    theirs = diff_cover(root)
    theirs_float = diff_cover(root, "--total-percent-float")

    # Ours, gathered exactly as the plugin gathers it.
    monkeypatch.chdir(root)
    project = config.load(Path.cwd())
    repo = git.find_repo(Path.cwd())
    assert repo is not None
    facts = covfacts.load_facts(project.root, root / ".coverage")
    changed = {
        os.path.realpath(repo.root / name): frozenset(lines)
        for name, lines in git.changed_lines(repo.root, base).items()
    }
    ours = conditions.coverage_diff(facts, changed, 0)
    lines = ours.details["lines"]
    covered = ours.details["covered"]
    uncovered = ours.details["uncovered"]

    # The variant is worth comparing: it has covered and uncovered changed lines.
    assert 0 < covered < lines
    assert "pkg/sub/unused.py" in uncovered
    assert "pkg/later.py" not in uncovered

    assert lines == theirs["total_num_lines"]
    assert lines - covered == theirs["total_num_violations"]
    stats = theirs["src_stats"]
    assert isinstance(stats, dict)
    their_uncovered = {
        name: stat["violation_lines"] for name, stat in stats.items() if stat["violation_lines"]
    }
    assert uncovered == their_uncovered
    for name, stat in stats.items():  # diff-cover's covered lines are covered for us too
        path = os.path.realpath(repo.root / name)
        file = next(file for file in facts.files if file.path == path)
        assert set(stat["covered_lines"]) <= changed[path] & (file.statements - file.missing)

    # diff-cover truncates the total to an int, or rounds it to 2 places with a flag; both
    # compute covered / total * 100, which can differ from ours in the last bit.
    assert isinstance(ours.actual, float)
    assert theirs["total_percent_covered"] <= ours.actual + 1e-9
    assert ours.actual < theirs["total_percent_covered"] + 1
    assert ours.actual == pytest.approx(theirs_float["total_percent_covered"], abs=0.005)


def test_a_diff_without_coverable_lines_is_fully_covered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both tools call a diff that touches no statement 100 % covered."""
    root = init_repo(tmp_path)
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("def f():\n    return 1\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_f.py").write_text("import pkg\n\n\ndef test_f():\n    pkg.f()\n")
    (root / ".gitignore").write_text(".coverage*\ncoverage.*\n__pycache__/\n*.json\n")
    commit_all(root, "main")
    run_git(root, "switch", "-q", "-c", "feature/comments")
    (root / "pkg" / "__init__.py").write_text("# a comment\ndef f():\n    return 1\n")
    commit_all(root, "comment only")
    tool(root, sys.executable, "-m", "coverage", "run", "--source=pkg", "-m", "pytest", "-q")
    tool(root, sys.executable, "-m", "coverage", "xml", "-o", "coverage.xml")
    theirs = diff_cover(root)
    monkeypatch.chdir(root)
    facts = covfacts.load_facts(root, root / ".coverage")
    changed = {
        os.path.realpath(root / name): frozenset(lines)
        for name, lines in git.changed_lines(root, git.merge_base(root, "main")).items()
    }
    assert changed == {os.path.realpath(root / "pkg" / "__init__.py"): frozenset({1})}
    ours = conditions.coverage_diff(facts, changed, 100)
    assert theirs["total_num_lines"] == ours.details["lines"] == 0
    assert theirs["total_percent_covered"] == ours.actual == 100.0
    assert ours.passed
