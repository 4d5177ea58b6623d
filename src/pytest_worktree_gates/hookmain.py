"""The git hook entry: ``hooks run STAGE`` without loading every other verb.

A hook runs on every commit, so its start-up is part of every commit's latency: the shims
call :func:`main` directly, while ``worktree-gates hooks run`` reaches the same code through
the CLI. For a plain ``git commit``, :mod:`hookstart` answers from the cache or starts the
checks first; only then is the rest of the package imported, while the checks run.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself costs an import on a path that must stay short
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Any, NoReturn

    from pytest_worktree_gates import git
    from pytest_worktree_gates.hookstart import Prestart

EXIT_FAILED = 1  # a hook that cannot run blocks the commit, as a failing check does
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str]) -> int:
    """``STAGE [--check NAME]... [--gate] [FILES...]``, as the shims pass it."""
    if list(argv) == ["pre-commit"]:  # what git passes: the case that must be fast
        from pytest_worktree_gates import hookstart

        try:
            early = hookstart.prestart(sys.stdout)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED  # nothing was touched yet
        if isinstance(early, int):
            global answered_early
            answered_early = True
            return early
        return run_hook(Arguments("pre-commit"), early, save_plan=True)
    if argv and argv[0] in STAGES and not any(word.startswith("-") for word in argv[1:]):
        # What git passes (a push adds the remote's name and URL): no argparse import needed.
        return run_hook(Arguments(argv[0], files=list(argv[1:])))
    import argparse

    parser = argparse.ArgumentParser(prog="worktree-gates hooks run")
    add_arguments(parser)
    args, extra = parser.parse_known_args(list(argv))
    if any(word.startswith("--") for word in extra):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.files = [*args.files, *extra]
    return run_hook(args)


STAGES = ("pre-commit", "pre-push")
answered_early = False  # the early start ran the whole hook: nothing else was loaded


def shim_exit(code: int) -> NoReturn:
    """The shims' exit: after an answer of the early start, without the interpreter's teardown.

    Freeing every module and object at exit takes a few milliseconds that the commit waits
    for. When the early start answered, there is nothing to clean up: its report is flushed
    here, the checks' output files are closed and its cache writes are committed.
    """
    if answered_early:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    sys.exit(code)


class Arguments:
    """What argparse would produce for ``hooks run`` (a plain class: no dataclasses import)."""

    def __init__(
        self, stage: str, check: Sequence[str] = (), gate: bool = False,
        files: Sequence[str] = (),
    ) -> None:  # fmt: skip
        self.stage = stage
        self.check = list(check)
        self.gate = gate
        self.files = list(files)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", metavar="STAGE", choices=STAGES)
    parser.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this check, whatever its stage (repeatable)",
    )
    parser.add_argument(
        "--gate",
        action="store_true",
        help="pre-push: run the unit gate (the default without --check)",
    )
    parser.add_argument("files", nargs="*", metavar="FILES")


def run_hook(
    args: Arguments | argparse.Namespace, early: Prestart | None = None, save_plan: bool = False
) -> int:
    """A hook never exits 2: git only knows zero (go on) and non-zero (stop).

    ``early``: what :mod:`hookstart` read and started, for the runner to adopt. ``save_plan``
    (the shim's ``git commit`` run): save the plan for the next commit's early start. Only
    that run saves it, as only that run reads it: the plan is keyed by the interpreter.
    """
    from pytest_worktree_gates.errors import GatesError

    try:
        return _run_hook(args, early, save_plan)
    except KeyboardInterrupt:  # staging.Interrupted too: SIGINT, SIGTERM, SIGHUP
        print(
            "worktree-gates: interrupted; your unstaged changes are back in place", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    except GatesError as error:
        print(f"worktree-gates: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if early is not None:
            early.stop()


def find_repo(fix: str = "run the hook from your project") -> git.Repo:
    """The worktree of the current directory, or one error that says what to do instead."""
    from pathlib import Path

    from pytest_worktree_gates import git
    from pytest_worktree_gates.errors import GatesError

    cwd = Path.cwd()
    repo = git.find_repo(cwd)
    if repo is not None:
        return repo
    bare = git.run(["rev-parse", "--is-bare-repository"], cwd=cwd, check=False).strip()
    if bare == "true":
        raise GatesError(f"{cwd} is a bare repository; hooks run in a work tree (a checkout)")
    raise GatesError(f"{cwd} is not inside a git work tree; {fix}")


def _run_hook(args: Arguments | argparse.Namespace, early: Prestart | None, save_plan: bool) -> int:
    # Imported here, and prepush only for a push: a cached commit hook should cost little.
    from pathlib import Path

    from pytest_worktree_gates import config, git, hookrun, hookstart, staging

    hookstart.absolute_index_env()
    if early is not None:  # it asked git already
        repo = git.Repo(Path(early.root), Path(early.git_dir), Path(early.common_dir))
    else:
        repo = find_repo()
    files = _from_root(repo.root, args.files) if args.files else None
    if args.stage == "pre-commit":
        whole_stage = save_plan and files is None and not args.check
        # Taken before the config is read: a config edited meanwhile then fails the check.
        plan_key = hookstart.plan_key(str(repo.root)) if whole_stage else None
        settings = config.load(repo.root)
        if files is None and staging.recover(repo.root, staging.patch_path(repo)):
            print("worktree-gates: restored unstaged changes left by an interrupted hook run")
        report = hookrun.run_pre_commit(repo, settings, args.check, files, early, plan_key)
    else:
        from pytest_worktree_gates import prepush

        settings = config.load(repo.root)
        # git passes the remote's name and URL as arguments and the refs on stdin; the
        # pre-commit framework passes the changed files as arguments and no refs.
        refs = _stdin_refs()
        if refs:
            files = None
        else:
            refs = prepush.fallback_refs(repo.root)
        report = prepush.run_pre_push(
            repo,
            settings,
            prepush.Selection(
                args.check,
                checks=bool(args.check) or not args.gate,
                gate=args.gate or not args.check,
            ),
            files,
            refs,
            sys.stdout,
        )
    hookrun.render(report, sys.stdout)
    return 0 if report.passed else EXIT_FAILED


def _from_root(root: Path, names: Sequence[str]) -> list[str]:
    """Command-line file names, taken from the current directory, as paths from the root."""
    from pathlib import Path

    cwd = Path.cwd()
    found = []
    for name in names:
        relative = os.path.relpath(os.path.normpath(cwd / name), root)
        if not relative.startswith(os.pardir):  # outside the work tree: nothing of ours
            found.append(Path(relative).as_posix())
    return found


def _stdin_refs() -> list[Any]:
    import select

    from pytest_worktree_gates import prepush

    if sys.stdin is None or sys.stdin.isatty():
        return []
    # git writes the lines and closes the pipe at once; an idle inherited stdin means none.
    ready, _, _ = select.select([sys.stdin], [], [], 0.5)
    return prepush.parse_refs(sys.stdin.read()) if ready else []
