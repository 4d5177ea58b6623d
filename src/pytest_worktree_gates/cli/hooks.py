"""``worktree-gates hooks install|uninstall|run STAGE``: the git hooks."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_worktree_gates import hookmain


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
    hookmain.add_arguments(run_parser)
    run_parser.set_defaults(run=hookmain.run_hook)


def run_install(args: argparse.Namespace) -> int:
    from pytest_worktree_gates import shims

    repo = hookmain.find_repo()  # not here(): installing must work with a broken config
    for line in shims.install(shims.hooks_dir(repo.root), args.force):
        print(line)
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    from pytest_worktree_gates import shims

    repo = hookmain.find_repo()
    for line in shims.uninstall(shims.hooks_dir(repo.root)):
        print(line)
    return 0
