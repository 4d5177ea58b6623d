"""``worktree-gates hooks install|uninstall|run STAGE``: the git hooks."""

from __future__ import annotations

import argparse
import select
import sys
from pathlib import Path
from typing import Any

from pytest_worktree_gates import config, git, staging
from pytest_worktree_gates.errors import GatesError

EXIT_FAILED = 1  # a hook that cannot run blocks the commit, as a failing check does
EXIT_INTERRUPTED = 130


def add_parser(verbs: Any) -> None:
    hooks = verbs.add_parser(
        "hooks",
        help="install, remove or run the git hooks",
        description="Install, remove or run the pre-commit and pre-push hooks.",
    )
    actions = hooks.add_subparsers(dest="action", metavar="ACTION", required=True)
    install = actions.add_parser(
        "install",
        help="write the hook shims into the repo's hooks directory",
        description="Write pre-commit and pre-push shims into the directory that "
        "`git rev-parse --git-path hooks` names (core.hooksPath is honoured). They serve the "
        "main checkout and every linked worktree.",
    )
    install.add_argument(
        "--force", action="store_true", help="back up a hook that is not ours and replace it"
    )
    install.set_defaults(run=run_install)
    uninstall = actions.add_parser(
        "uninstall",
        help="remove the shims and restore a backed-up hook",
        description="Remove the shims and put back any hook that `install --force` backed up.",
    )
    uninstall.set_defaults(run=run_uninstall)
    run_parser = actions.add_parser(
        "run",
        help="run the checks of STAGE (pre-commit or pre-push)",
        description="Run the checks configured for STAGE on the staged files (pre-commit) or on "
        "the files the pushed commits change (pre-push, which also runs the unit gate unless "
        "the ledger has a pass for the pushed tree). FILES, as the pre-commit framework passes "
        "them, replace the staged files; then nothing is stashed or restaged. Exit 0 when "
        "everything passed, 1 when a check failed or the hook could not run.",
    )
    run_parser.add_argument("stage", metavar="STAGE", choices=("pre-commit", "pre-push"))
    run_parser.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this check, whatever its stage (repeatable)",
    )
    run_parser.add_argument(
        "--gate",
        action="store_true",
        help="pre-push: run the unit gate (the default without --check)",
    )
    run_parser.add_argument("files", nargs="*", metavar="FILES")
    run_parser.set_defaults(run=run_hook)


def run_install(args: argparse.Namespace) -> int:
    from pytest_worktree_gates import shims

    repo = _repo()  # not here(): installing must work while the config is broken
    for line in shims.install(shims.hooks_dir(repo.root), args.force):
        print(line)
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    from pytest_worktree_gates import shims

    repo = _repo()
    for line in shims.uninstall(shims.hooks_dir(repo.root)):
        print(line)
    return 0


def run_hook(args: argparse.Namespace) -> int:
    """A hook never exits 2: git only knows zero (go on) and non-zero (stop)."""
    try:
        return _run_hook(args)
    except staging.Interrupted:
        print(
            "worktree-gates: interrupted; your unstaged changes are back in place", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    except GatesError as error:
        print(f"worktree-gates: error: {error}", file=sys.stderr)
        return EXIT_FAILED


def _repo() -> git.Repo:
    cwd = Path.cwd()
    repo = git.find_repo(cwd)
    if repo is not None:
        return repo
    bare = git.run(["rev-parse", "--is-bare-repository"], cwd=cwd, check=False).strip()
    if bare == "true":
        raise GatesError(f"{cwd} is a bare repository; hooks run in a work tree (a checkout)")
    raise GatesError(f"{cwd} is not inside a git work tree; run the hook from your project")


def _run_hook(args: argparse.Namespace) -> int:
    # Imported here, and prepush only for a push: a cached commit hook should cost ~100 ms.
    from pytest_worktree_gates import hookrun

    staging.absolute_index_env()
    repo = _repo()
    settings = config.load(repo.root)
    files = args.files or None
    if args.stage == "pre-commit":
        if files is None and staging.recover(repo.root, staging.patch_path(repo)):
            print("worktree-gates: restored unstaged changes left by an interrupted hook run")
        report = hookrun.run_pre_commit(repo, settings, args.check, files)
    else:
        from pytest_worktree_gates import prepush

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


def _stdin_refs() -> list[Any]:
    from pytest_worktree_gates import prepush

    if sys.stdin is None or sys.stdin.isatty():
        return []
    # git writes the lines and closes the pipe at once; an idle inherited stdin means none.
    ready, _, _ = select.select([sys.stdin], [], [], 0.5)
    return prepush.parse_refs(sys.stdin.read()) if ready else []
