"""``worktree-gates VERB``: one module per verb, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_worktree_gates import __version__
from pytest_worktree_gates.cli import (
    approve,
    baseline,
    cleanup,
    db,
    doctor,
    gate,
    hooks,
    init,
    merge,
    new,
    serve,
    status,
)
from pytest_worktree_gates.cli import list as list_verb
from pytest_worktree_gates.errors import GatesError

VERBS = (
    init,
    new,
    list_verb,
    status,
    gate,
    approve,
    merge,
    cleanup,
    baseline,
    hooks,
    db,
    serve,
    doctor,
)

EXIT_USER_ERROR = 2  # as argparse exits on a bad command line


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="worktree-gates",
        description="Enforced gates for the git worktree-per-feature workflow.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbs = top.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        verb.add_parser(verbs)
    return top


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line as the verbs see it; a bad one exits 2 with argparse's usage message."""
    # Not list(): importing the `list` verb's module binds `list` in this package's namespace.
    words = [*argv]
    # Everything after the first `--` belongs to pytest, wherever our own options stand.
    passthrough: list[str] = []
    if "--" in words:
        cut = words.index("--")
        words, passthrough = words[:cut], words[cut + 1 :]
    top = parser()
    args, extra = top.parse_known_args(words)
    # `hooks run STAGE --check X a.py b.py`: argparse cannot take positionals after an option
    # that follows other positionals, so trailing file names arrive here as extras.
    if extra and hasattr(args, "files") and not any(word.startswith("--") for word in extra):
        args.files = [*args.files, *extra]
    elif extra:
        top.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = passthrough
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        code: int = args.run(args)
    except GatesError as error:
        print(f"worktree-gates: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `worktree-gates status | head` is not an error
        sys.stderr.close()
        return 0
    return code
