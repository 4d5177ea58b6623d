"""``hooks run STAGE``: the configured checks on what a commit or push changes, fast.

Decisions are pure (which check runs on which files, what the cache already vouches for);
processes, the index and the work tree are touched only in :func:`run_pre_commit` and the
steps it calls (:func:`start_checks`, :func:`run_fixer`, :func:`collect`). A run with nothing
new to check answers from the cache alone: it reads the index once and the state database
once, and never touches the work tree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pytest_worktree_gates import checkrun, git, hookcache, hookstart, staging, state
from pytest_worktree_gates.config import Check, Config
from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.hookstart import shown_files as _files


@dataclass(frozen=True)
class Target:
    """One file a check may look at, with the id of the content the check will see."""

    path: str
    blob: str


@dataclass(frozen=True)
class Step:
    """One check's work in this run: which files it runs on and what the cache vouches for."""

    check: Check
    setup: str
    files: tuple[Target, ...]  # the check's files (all of them, cached or not)
    pending: tuple[Target, ...]  # those it must run on
    due: bool  # must the tool run at all
    tree: str | None = None  # the subject of a check keyed by the whole tree, if cacheable

    def subjects(self) -> list[str]:
        """What a pass of this run vouches for."""
        if hookcache.whole_tree(self.check):
            return [self.tree] if self.tree else []
        return [t.blob for t in self.pending]


@dataclass(frozen=True)
class Outcome:
    check: str
    passed: bool
    files: tuple[str, ...]
    cached: int
    output: str = ""
    fixed: tuple[str, ...] = ()
    unstageable: tuple[str, ...] = ()  # fixed, but with unstaged hunks: not restaged


@dataclass
class Report:
    stage: str
    restages: bool = True  # False when a framework owns the index and reports the rewrites
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(item.passed for item in self.outcomes)


def select(config: Config, stage: str, names: Sequence[str]) -> list[Check]:
    """The checks of ``stage``, or exactly the ones named (whatever their stage)."""
    if names:
        unknown = [name for name in names if name not in config.checks]
        if unknown:
            known = ", ".join(sorted(config.checks)) or "none"
            raise GatesError(
                f"unknown check {unknown[0]!r}; configured checks: {known} "
                "(see [tool.worktree-gates.checks] in pyproject.toml)"
            )
        return [config.checks[name] for name in names]
    return [check for check in config.checks.values() if check.stage == stage]


def plan(
    check: Check, files: tuple[Target, ...], setup: str, tree: str | None, done: set[str]
) -> Step:
    """Pure: what ``check`` still has to do on its ``files``, given the subjects that passed."""
    if hookcache.whole_tree(check):
        cached = tree is not None and tree in done
        pending = () if cached or "{files}" not in check.run else files
        return Step(check, setup, files, pending, not cached, tree)
    pending = tuple(t for t in files if t.blob not in done)
    return Step(check, setup, files, pending, due=bool(pending))


@dataclass
class Planner:
    """Looks up tools, their versions and past passes: one database, one setup per check."""

    connection: sqlite3.Connection
    configs: str = ""
    _setups: dict[str, str] = field(default_factory=dict)

    def setup(self, check: Check) -> str:
        if check.name not in self._setups:
            program = checkrun.require_tool(check)
            version = hookcache.tool_version(self.connection, program)
            self._setups[check.name] = hookcache.setup_digest(check, version, self.configs)
        return self._setups[check.name]

    def step(self, check: Check, targets: Sequence[Target], tree: str | None) -> Step:
        files = tuple(t for t in targets if checkrun.matches(t.path, check.files))
        if not files and "{files}" in check.run:
            return Step(check, "", (), (), due=False)  # nothing to check: no tool needed either
        setup = self.setup(check)
        subjects = [tree] if hookcache.whole_tree(check) and tree else [t.blob for t in files]
        done = hookcache.passed(self.connection, check.name, setup, subjects)
        return plan(check, files, setup, tree, done)


def start_checks(
    root: Path, steps: Sequence[Step], started: dict[str, hookstart.Started] | None = None
) -> list[tuple[Step, checkrun.RunningCheck]]:
    """Start the non-fixer steps in parallel, check-only, adopting those the early start began.

    ``started`` holds only commands this run would start itself (see :func:`_reconcile`).
    """
    running: list[tuple[Step, checkrun.RunningCheck]] = []
    try:
        for step in steps:
            running.append((step, _running(root, step, started)))
    except BaseException:
        stop(running)
        raise
    return running


def _running(
    root: Path, step: Step, started: dict[str, hookstart.Started] | None
) -> checkrun.RunningCheck:
    paths = [t.path for t in step.pending]
    argv = checkrun.hook_command(step.check, paths)
    adopted = started.pop(step.check.name, None) if started else None
    return checkrun.RunningCheck(step.check, root, paths, argv, adopted, step.check.preload)


def _reconcile(steps: Sequence[Step], started: dict[str, hookstart.Started]) -> None:
    """Keep the early starts that are exactly what this run would start; stop the others.

    A stopped fixer is let finish first; whatever it rewrote, git's diff then shows, and the
    fixer's own step restages or drops it as usual.
    """
    wanted = {
        step.check.name: checkrun.hook_command(step.check, [t.path for t in step.pending])
        for step in steps
        if step.due
    }
    for name, item in list(started.items()):
        if wanted.get(name) != item.argv:
            del started[name]
            item.stop()


def stop(running: Sequence[tuple[Step, checkrun.RunningCheck]]) -> None:
    for _, process in running:  # an interrupt must not leave a tool writing files
        process.kill()


def collect(
    running: Sequence[tuple[Step, checkrun.RunningCheck]], connection: sqlite3.Connection
) -> list[Outcome]:
    """Wait for the started checks and cache what passed."""
    try:
        outcomes = []
        for step, process in running:
            facts = process.finish()
            passed = facts.returncode == 0 and facts.errors == 0
            ran_on = tuple(t.path for t in step.pending)
            if passed:
                hookcache.remember(connection, step.check.name, step.setup, step.subjects())
            elif process.failed_paths and not hookcache.whole_tree(step.check):
                # The tool named the files with findings: the others passed.
                bad = process.failed_paths
                good = [t.blob for t in step.pending if t.path not in bad]
                hookcache.remember(connection, step.check.name, step.setup, good)
                ran_on = tuple(t.path for t in step.pending if t.path in bad) or ran_on
            cached = len(step.files) - len(step.pending)
            outcomes.append(Outcome(step.check.name, passed, ran_on, cached, facts.output))
        return outcomes
    finally:
        stop(running)


def run_fixer(
    root: Path,
    step: Step,
    connection: sqlite3.Connection,
    staged: set[str] | None,
    partial: set[str],
    started: dict[str, hookstart.Started] | None = None,
) -> Outcome:
    """Run one formatter; restage what it fixed unless the file has unstaged hunks.

    ``staged`` is None when a framework owns the index: then files are fixed in place only.
    """
    paths = [t.path for t in step.pending]
    process = _running(root, step, started)
    try:
        facts = process.finish()
    finally:
        process.kill()
    after = {t.path: _content_id(root / t.path) for t in step.pending}
    if staged is None:
        # The files held exactly the blobs planned on, so a new blob id means a rewrite.
        blocked: tuple[str, ...] = ()
        fixed = tuple(t.path for t in step.pending if after[t.path] != t.blob)
    else:
        # Every tracked file equalled the index before the fixer ran, so git's diff is its work,
        # even for a fixer that formats the whole project.
        rewritten = staging.unstaged_paths(root)
        blocked = tuple(sorted(rewritten & staged & partial))
        fixed = tuple(sorted((rewritten & staged) - partial))
        # Not part of this commit: drop the rewrite (it comes when the file is committed).
        staging.reset_to_index(root, [*blocked, *sorted(rewritten - staged)])
        staging.restage(root, fixed)
    passed = facts.returncode == 0 and not blocked
    if facts.returncode == 0:
        # What passed is the content as the fixer left it, never the content it had to fix.
        subjects = [after[t.path] for t in step.pending if t.path not in blocked]
        hookcache.remember(connection, step.check.name, step.setup, subjects)
    output = facts.output if facts.returncode else ""
    return Outcome(
        step.check.name,
        passed,
        blocked if facts.returncode == 0 and blocked else tuple(paths),
        len(step.files) - len(step.pending),
        output,
        fixed,
        blocked,
    )


def _content_id(path: Path) -> str:
    try:
        return hookcache.blob_sha(path.read_bytes())
    except OSError:  # a tool that deleted a file left nothing that passed
        return ""


def staged_targets(root: Path) -> list[Target]:
    return [Target(item.path, item.blob) for item in staging.status(root).staged]


def file_targets(root: Path, names: Sequence[str]) -> list[Target]:
    """Files by root-relative name (given by a framework, or changed by a push): hash them.

    Symlinks are left out, as in the staged mode: their content is a path, not Python.
    """
    targets = []
    for name in names:
        path = root / name
        if path.is_file() and not path.is_symlink():
            targets.append(Target(name, hookcache.blob_sha(path.read_bytes())))
    return targets


def run_pre_commit(
    repo: git.Repo,
    config: Config,
    names: Sequence[str],
    files: Sequence[str] | None,
    early: hookstart.Prestart | None = None,
    plan_key: tuple[object, ...] | None = None,
) -> Report:
    """The pre-commit stage on the staged files, or on ``files`` when a framework gives them.

    With ``files`` the caller (pre-commit, prek) owns the index: it has already set unstaged
    hunks aside, and it reports files a fixer changed, so nothing is stashed or restaged here.
    ``early`` is what the early start (hookstart) read and began: a check it started is
    adopted if this run would start exactly that command, and stopped otherwise; the caller
    (hookmain.run_hook) stops whatever is left, however the run ends. With ``plan_key``, the
    plan for the next commit's early start is saved.
    """
    root = repo.root
    checks = select(config, "pre-commit", names)
    framework = files is not None
    report = Report("pre-commit", restages=not framework)
    unstaged: frozenset[str] = frozenset()
    if framework:
        targets = file_targets(root, files or ())
    elif early is not None:  # it read the index already, and found nothing unstaged
        targets = [Target(path, blob) for path, blob in early.staged]
    else:
        found = staging.status(root)
        targets = [Target(item.path, item.blob) for item in found.staged]
        unstaged = found.unstaged
    started = early.started if early is not None else {}
    if not checks or not (targets or any("{files}" not in c.run for c in checks)):
        return report
    backup = staging.patch_path(repo)
    with state.connect(repo.state_dir) as connection:
        planner = Planner(connection, hookcache.config_blobs(root))
        if plan_key is not None:
            _save_plan(repo, config, planner, checks, plan_key)
        tree = early.tree if early is not None and early.tree else _tree(root, checks, framework)
        steps = [planner.step(check, targets, tree) for check in checks]
        _reconcile(steps, started)
        if not any(step.due for step in steps):
            report.outcomes = [_cached(step) for step in steps if step.setup]
            return report
        aside = (
            nullcontext(set[str]())
            if framework
            else staging.unstaged_set_aside(root, backup, unstaged)
        )
        with aside as partial:
            fixers = [step for step in steps if step.check.fixes and step.due]
            # The other checks start together with the fixers, on the staged content. When no
            # fixer writes a file, that is exactly what they would see after the fixers, so
            # their results stand; when one does, they are stopped and run again afterwards.
            # A fixer without {files} may write anywhere: then the others wait for it.
            together = all("{files}" in step.check.run for step in fixers)
            others = [s for s in steps if s.due and not s.check.fixes] if together else []
            running = start_checks(root, others, started)
            try:
                written = sorted({t.path for step in fixers for t in step.pending})
                # Taken before anything started: the early start's, or now.
                before = (
                    [early.stamps.get(path) for path in written]
                    if early is not None
                    else _stamps(root, written)
                )
                staged = None if framework else {t.path for t in targets}
                for step in fixers:
                    report.outcomes.append(
                        run_fixer(root, step, connection, staged, partial, started)
                    )
                if _stamps(root, written) != before:
                    stop(running)
                    running = []
                if any(item.fixed for item in report.outcomes) and not framework:
                    # Restaged content has new blob ids (and a new tree): plan the rest again.
                    targets = staged_targets(root)
                    tree = _tree(root, checks, framework)
                    steps = [planner.step(step.check, targets, tree) for step in steps]
                return finish(root, steps, report, connection, running)
            finally:
                stop(running)


def _stamps(root: Path, paths: Sequence[str]) -> list[hookstart.Stamp]:
    """The files' identities: any write by a fixer changes one (the ctime at least)."""
    return [hookstart.file_stamp(str(root / path)) for path in paths]


def _save_plan(
    repo: git.Repo,
    config: Config,
    planner: Planner,
    checks: Sequence[Check],
    key: tuple[object, ...],
) -> None:
    """Save what the early start of the next commit needs: each check as planned here."""
    if config.path != repo.root / "pyproject.toml":
        return  # the plan's key covers the config files of the root only
    try:
        plan = [
            hookstart.planned(
                check,
                hookcache.whole_tree(check),
                planner.setup(check),
                checkrun.hook_command(check, [hookstart.FILES]),
                checkrun.require_tool(check),
                checkrun.parser_for(check) is not None,
            )
            for check in checks
        ]
    except GatesError:
        return  # a tool is missing: the run reports it if it needs the tool
    # Per worktree: each has its own root, config files and perhaps interpreter.
    hookstart.save_plan(str(repo.git_dir / hookstart.STATE_DIR), key, plan)


def finish(
    root: Path,
    steps: Sequence[Step],
    report: Report,
    connection: sqlite3.Connection,
    running: Sequence[tuple[Step, checkrun.RunningCheck]] = (),
) -> Report:
    """Run the remaining checks in parallel, after the fixers, and list the cached ones.

    ``running`` are checks already started (with the fixers): they are not started again.
    """
    ran = {item.check for item in report.outcomes}
    began = {step.check.name: (step, process) for step, process in running}
    todo = [s for s in steps if s.check.name not in ran and s.due]
    fresh = start_checks(root, [s for s in todo if s.check.name not in began])
    new = {step.check.name: (step, process) for step, process in fresh}
    report.outcomes += collect([began.get(s.check.name) or new[s.check.name] for s in todo],
                               connection)  # fmt: skip
    report.outcomes += [
        _cached(s) for s in steps if s.check.name not in ran and s.setup and not s.due
    ]
    return report


def _tree(root: Path, checks: Sequence[Check], framework: bool) -> str | None:
    """The staged tree, when some check is keyed by it and the work tree matches the index."""
    if not any(hookcache.whole_tree(check) for check in checks):
        return None
    if framework and staging.unstaged_paths(root):
        return None  # the tool reads the work tree, which is not the staged tree: no cache
    return staging.write_tree(root)


def _cached(step: Step) -> Outcome:
    return Outcome(step.check.name, True, (), len(step.files) or 1)


def render(report: Report, out: TextIO) -> None:
    """One line per check, and for a failure: what failed, on which files, how to rerun it."""
    for item in report.outcomes:
        shown = _files(item.files)
        if not item.files:
            print(f"{item.check}: ok (cached)", file=out)
        elif item.passed:
            cached = f", {item.cached} cached" if item.cached else ""
            print(f"{item.check}: ok on {shown}{cached}", file=out)
        else:
            print(f"{item.check}: FAILED on {shown}", file=out)
        if item.fixed:
            done = "fixed and restaged" if report.restages else "fixed in place"
            print(f"  {done}: {_files(item.fixed)}", file=out)
        if item.unstageable:
            print(
                f"  fixed but not restaged, because these files also have unstaged changes: "
                f"{_files(item.unstageable)}; the fixes were dropped: stage the whole file "
                f"(or stash the rest) and commit again",
                file=out,
            )
        if not item.passed:
            for line in item.output.splitlines():
                print(f"  {line}", file=out)
            if item.check.startswith("gate:"):
                rerun = f"worktree-gates gate run {item.check[5:]}"
            else:
                rerun = f"worktree-gates hooks run {report.stage} --check {item.check}"
            print(f"  rerun it alone: {rerun}", file=out)
