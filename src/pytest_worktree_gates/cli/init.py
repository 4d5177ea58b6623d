"""``worktree-gates init``: set an existing repo up for the gates and hooks, idempotently."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_worktree_gates import hookmain, scaffold, shims
from pytest_worktree_gates.errors import GatesError


def add_parser(verbs: Any) -> None:
    init = verbs.add_parser(
        "init",
        help="add the config section, the pre-commit config and the git hooks",
        description="Add a commented [tool.worktree-gates] section to pyproject.toml (the rest "
        "of the file is left as it is), add the worktree-gates hooks to .pre-commit-config.yaml "
        "(created if missing; existing hooks are kept), and install the git hook shims. "
        "Running it again changes nothing.",
    )
    init.add_argument("--no-hooks", action="store_true", help="do not install the git hook shims")
    init.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root = hookmain.find_repo("run `git init` first").root
    # Decide everything first: a bad file stops init before anything is written.
    pyproject = root / "pyproject.toml"
    pre_commit = root / ".pre-commit-config.yaml"
    new_pyproject = scaffold.pyproject(_read(pyproject))
    new_pre_commit = scaffold.pre_commit_config(_read(pre_commit))
    directory = shims.hooks_dir(root)
    hooks = shims.inspect(directory)
    foreign = [hook for hook in hooks if hook.state == "foreign"]

    _write(pyproject, new_pyproject, "added a commented [tool.worktree-gates] section")
    _write(pre_commit, new_pre_commit, "added the worktree-gates hooks")
    if args.no_hooks:
        print("git hooks: not installed (--no-hooks)")
    elif foreign:
        names = ", ".join(hook.stage for hook in foreign)
        print(
            f"git hooks: kept the existing {names} hook (not ours); "
            "`worktree-gates hooks install --force` replaces it and keeps a backup"
        )
    elif all(hook.state == "ours" for hook in hooks):
        print(f"git hooks: already installed in {directory}")
    else:
        for line in shims.install(directory, force=False):
            print(f"git hooks: {line}")
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise GatesError(f"{path}: cannot read it ({error}); nothing changed") from None


def _write(path: Path, text: str | None, what: str) -> None:
    if text is None:
        print(f"{path.name}: already set up; unchanged")
        return
    temporary = path.with_name(f".{path.name}.worktree-gates-new")
    temporary.write_text(text)
    temporary.replace(path)  # never a half-written pyproject.toml
    print(f"{path.name}: {what}")
