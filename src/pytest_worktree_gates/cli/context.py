"""What every verb needs first: the configuration and the repo it applies to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates import config, git
from pytest_worktree_gates.errors import GitError


@dataclass(frozen=True)
class Context:
    config: config.Config
    repo: git.Repo


def here(cwd: Path | None = None) -> Context:
    """The project and worktree of the current directory, or one error saying what to do."""
    cwd = cwd or Path.cwd()
    repo = git.find_repo(cwd)
    if repo is None:
        raise GitError(f"{cwd} is not inside a git work tree; run this from your project")
    return Context(config.load(cwd), repo)
