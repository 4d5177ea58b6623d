"""Commit-hook latency: worktree-gates against pre-commit and prek, side by side, in one run.

A synthetic repo of MODULES Python modules is copied four times. Each copy runs the same three
steps at commit time (ruff format, ruff check, mypy): through `worktree-gates hooks install`
(twice: as installed, and with its preload servers turned off), through `pre-commit install`
and through `prek install`, the latter two with `repo: local` / `language: system` hooks. Runs
are interleaved (one of each in turn), so that load on the machine hits all alike; the report
gives medians and ratios against the anchors measured in the same run, and the floor: the same
tools run directly on the same files.

    .venv/bin/python bench/hooks.py [--runs 7] [--modules 500] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
BIN = Path(sys.executable).parent
TOOLS = ("worktree-gates", "pre-commit", "prek")
# worktree-gates again, with its preload servers turned off: what they contribute.
PLAIN = "worktree-gates, preload off"

PYPROJECT = """\
[project]
name = "synthetic"
version = "0"

[tool.worktree-gates.checks]
format = { run = "ruff format {files}", fixes = true, stage = "pre-commit" }
lint = { run = "ruff check {files}", stage = "pre-commit" }
types = { run = "mypy {files}", stage = "pre-commit" }

[tool.mypy]
ignore_missing_imports = true
"""

PRE_COMMIT_CONFIG = """\
repos:
  - repo: local
    hooks:
      - id: ruff-format
        name: ruff format
        entry: ruff format
        language: system
        types: [python]
      - id: ruff-check
        name: ruff check
        entry: ruff check
        language: system
        types: [python]
      - id: mypy
        name: mypy
        entry: mypy
        language: system
        types: [python]
        require_serial: true
"""

MODULE = '''\
"""Module {i}."""

from __future__ import annotations

from pkg.m{parent:03d} import value_{parent}


def value_{i}(x: int) -> int:
    """A value."""
    return value_{parent}(x) + {i}


def name_{i}(prefix: str) -> str:
    return f"{{prefix}}-{i}"
'''

ROOT_MODULE = '''\
"""Module 0."""

from __future__ import annotations


def value_0(x: int) -> int:
    return x
'''


def env() -> dict[str, str]:
    result = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") and key != "PYTHONDONTWRITEBYTECODE"
    }
    result["PATH"] = os.pathsep.join([str(BIN), result.get("PATH", "")])
    result.update(
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
    )
    return result


ENV = env()


def sh(
    args: Sequence[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=env or ENV, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return done


def make_repo(root: Path, modules: int) -> None:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "m000.py").write_text(ROOT_MODULE)
    for i in range(1, modules):
        (root / "pkg" / f"m{i:03d}.py").write_text(MODULE.format(i=i, parent=i // 2))
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / ".pre-commit-config.yaml").write_text(PRE_COMMIT_CONFIG)
    (root / ".gitignore").write_text(".mypy_cache/\n.ruff_cache/\n__pycache__/\n")
    sh(["git", "init", "-q", "-b", "main"], root)
    sh(["git", "add", "-A"], root)
    sh(["git", "commit", "-q", "-m", "synthetic"], root)


def install(tool: str, root: Path) -> None:
    if tool in ("worktree-gates", PLAIN):
        sh([str(BIN / "worktree-gates"), "hooks", "install"], root)
    else:
        sh([str(BIN / tool), "install"], root)


def touch(root: Path, count: int, serial: int) -> list[str]:
    """Change ``count`` modules with clean, formatted code (every hook passes, no fix needed)."""
    names = []
    for i in range(1, count + 1):
        path = root / "pkg" / f"m{i:03d}.py"
        with path.open("a") as handle:
            handle.write(f"\n\ndef extra_{serial}_{i}(x: int) -> int:\n    return x * {serial}\n")
        names.append(path.relative_to(root).as_posix())
    return names


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def commit(tool: str, root: Path, serial: int) -> None:
    env = {**ENV, "WORKTREE_GATES_PRELOAD_IDLE": "0"} if tool == PLAIN else ENV
    sh(["git", "commit", "-q", "-m", f"change {serial}"], root, env=env)


def measure_commits(
    repos: dict[str, Path], files: int, runs: int, serial: list[int]
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {tool: [] for tool in repos}
    for run in range(runs + 2):  # two warm-up rounds: tool caches, mypy's cache, pyc files
        for tool, root in repos.items():
            serial[0] += 1
            touch(root, files, serial[0])
            sh(["git", "add", "-A"], root)
            took = timed(lambda tool=tool, root=root: commit(tool, root, serial[0]))
            if run >= 2:
                times[tool].append(took)
    return times


def measure_floor(root: Path, files: int, runs: int, serial: list[int]) -> list[float]:
    """The same three tools run directly, one after the other, on the changed files."""
    times = []
    for run in range(runs + 2):
        serial[0] += 1
        names = touch(root, files, serial[0])

        def tools(names: list[str] = names) -> None:
            for argv in (["ruff", "format"], ["ruff", "check"], ["mypy"]):
                sh([str(BIN / argv[0]), *argv[1:], *names], root)

        took = timed(tools)
        sh(["git", "checkout", "-q", "--", "."], root)
        if run >= 2:
            times.append(took)
    return times


def measure_cached(root: Path, runs: int) -> tuple[list[float], list[float], list[float]]:
    """The installed hook when everything staged already passed; the CLI form; bare Python."""
    serial = 10_000
    touch(root, 1, serial)
    sh(["git", "add", "-A"], root)
    hook = ["sh", ".git/hooks/pre-commit"]  # exactly what git runs
    cli = [str(BIN / "python"), "-m", "pytest_worktree_gates", "hooks", "run", "pre-commit"]
    sh(hook, root)
    cached, via_cli, bare = [], [], []
    for _ in range(runs * 3):
        cached.append(timed(lambda: sh(hook, root)))
        via_cli.append(timed(lambda: sh(cli, root)))
        bare.append(timed(lambda: sh([str(BIN / "python"), "-c", "pass"], root)))
    sh(["git", "reset", "-q", "--hard"], root)
    return cached, via_cli, bare


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def report(args: argparse.Namespace, one: dict[str, list[float]], many: dict[str, list[float]],
           floor_one: list[float], floor_many: list[float], cached: list[float],
           via_cli: list[float], bare: list[float]) -> str:  # fmt: skip
    def row(name: str, values: dict[str, list[float]], floor: list[float]) -> str:
        ours, pre_commit, prek, plain = (ms(values[tool]) for tool in (*TOOLS, PLAIN))
        return (
            f"| {name} | {ours:.0f} | {plain:.0f} | {pre_commit:.0f} | {prek:.0f} "
            f"| {ms(floor):.0f} | {ours / pre_commit:.2f}x ({plain / pre_commit:.2f}x) "
            f"| {ours / prek:.2f}x ({plain / prek:.2f}x) |"
        )

    versions = {
        tool: sh([str(BIN / tool), "--version"], PROJECT).stdout.strip().splitlines()[0]
        for tool in ("pre-commit", "prek", "ruff", "mypy")
    }
    lines = [
        f"\n## Commit hooks: worktree-gates vs pre-commit vs prek ({time.strftime('%Y-%m-%d')})\n",
        f"Command: `.venv/bin/python bench/hooks.py --runs {args.runs} --modules {args.modules}`"
        f" on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        + ", ".join(versions.values())
        + f"; load average {args.load_before:.1f} before and {os.getloadavg()[0]:.1f} after.\n",
        f"A synthetic repo of {args.modules} modules; every tool runs ruff format, ruff check "
        "and mypy on the staged files at commit time (pre-commit and prek: `repo: local`, "
        "`language: system`). Each change is new content, so the worktree-gates result cache "
        f"never helps in the commit rows. Medians of {args.runs} interleaved runs after two "
        "warm-up rounds, in milliseconds; the floor is the three tools run directly, one after "
        "the other, on the same files. worktree-gates runs mypy in its preload server (see "
        "hooks.md, preloaded Python tools); the column *preload off* is the same hook with "
        "`WORKTREE_GATES_PRELOAD_IDLE=0`, and its ratios are in brackets.\n",
        "| scenario | worktree-gates | preload off | pre-commit | prek | floor "
        "| vs pre-commit | vs prek |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        row("`git commit`, 1 staged file", one, floor_one),
        row(f"`git commit`, {args.many} staged files", many, floor_many),
        "",
        f"Nothing changed (everything staged already passed): the installed pre-commit hook "
        f"takes **{ms(cached):.0f} ms** (median of {len(cached)}); the same run through the "
        f"CLI, `worktree-gates hooks run pre-commit`, {ms(via_cli):.0f} ms; a bare "
        f"`python -c pass` {ms(bare):.0f} ms, on the same machine in the same run.\n",
    ]
    targets = [
        ("1 file: <= 0.5x pre-commit", ms(one["worktree-gates"]) <= 0.5 * ms(one["pre-commit"])),
        ("1 file: faster than prek", ms(one["worktree-gates"]) < ms(one["prek"])),
        (
            f"{args.many} files: <= 0.7x pre-commit",
            ms(many["worktree-gates"]) <= 0.7 * ms(many["pre-commit"]),
        ),
        ("nothing changed: <= 100 ms", ms(cached) <= 100),
    ]
    lines.append(
        "Targets: "
        + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in targets)
        + ".\n"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--modules", type=int, default=500)
    parser.add_argument("--many", type=int, default=50, help="files staged in the large commit")
    parser.add_argument("--write", type=Path, help="append the results to this markdown file")
    args = parser.parse_args()
    args.load_before = os.getloadavg()[0]  # other work on the machine makes every number noisier
    # Compiled bytecode, as an installed package has; the hook must not pay for compiling.
    sh([sys.executable, "-m", "compileall", "-q", str(PROJECT / "src")], PROJECT)
    with tempfile.TemporaryDirectory(prefix="wtg-bench-") as scratch:
        base = Path(scratch)
        ENV["PRE_COMMIT_HOME"] = str(base / "pre-commit-home")
        ENV["PREK_HOME"] = str(base / "prek-home")
        make_repo(base / "template", args.modules)
        repos = {}
        for tool in (*TOOLS, PLAIN):
            folder = base / tool.replace(", ", "-").replace(" ", "-")
            shutil.copytree(base / "template", folder, symlinks=True)
            install(tool, folder)
            repos[tool] = folder
        serial = [0]
        print("one staged file ...", file=sys.stderr)
        one = measure_commits(repos, 1, args.runs, serial)
        print(f"{args.many} staged files ...", file=sys.stderr)
        many = measure_commits(repos, args.many, args.runs, serial)
        print("floor ...", file=sys.stderr)
        floor_one = measure_floor(base / "template", 1, args.runs, serial)
        floor_many = measure_floor(base / "template", args.many, args.runs, serial)
        print("cached rerun ...", file=sys.stderr)
        cached, via_cli, bare = measure_cached(repos["worktree-gates"], args.runs)
    text = report(args, one, many, floor_one, floor_many, cached, via_cli, bare)
    print(text)
    if args.write:
        if not args.write.exists():
            args.write.write_text("# Benchmarks\n\nMeasured speed, each section with the command "
                                  "that produced it. Timings are medians; compare the ratios, "
                                  "not the absolute times, across machines.\n")  # fmt: skip
        with args.write.open("a") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
