"""Git facts about many worktrees at once, read with as few git calls as possible.

``list`` must stay under half a second with twenty worktrees, so one call lists them all and
the per-worktree calls (status, ahead/behind) run side by side instead of one after another.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates import git
from pytest_worktree_gates.errors import GitError


@dataclass(frozen=True)
class Checkout:
    """One entry of ``git worktree list --porcelain``."""

    path: Path
    head: str
    branch: str  # refs/heads/..., or "" when detached
    primary: bool


def parse_worktree_list(text: str) -> list[Checkout]:
    checkouts = []
    for number, block in enumerate(text.strip().split("\n\n")):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            fields[key] = value
        if "worktree" in fields:
            checkouts.append(
                Checkout(
                    Path(fields["worktree"]),
                    fields.get("HEAD", ""),
                    fields.get("branch", ""),
                    number == 0,
                )
            )
    return checkouts


def checkouts(root: Path) -> list[Checkout]:
    return parse_worktree_list(git.run(["worktree", "list", "--porcelain"], cwd=root))


def primary_root(root: Path) -> Path:
    """The main worktree (where ``.worktrees/`` lives), whichever worktree we stand in."""
    return checkouts(root)[0].path


def uncommitted(root: Path) -> tuple[str, ...]:
    """The paths ``git status`` shows as changed or untracked (not ignored) in ``root``."""
    out = git.run(["status", "--porcelain", "--untracked-files=normal"], root)
    return tuple(line[3:] for line in out.splitlines())


def rev(root: Path, ref: str) -> str:
    """The object ``ref`` names, or "" when there is none (no error: absence is an answer)."""
    return git.run(["rev-parse", "--verify", "--quiet", ref], root, check=False).strip()


def run_many(commands: Sequence[tuple[list[str], Path]]) -> list[tuple[int, str]]:
    """Run several git commands at once; (exit code, stdout) of each, in order."""
    started = []
    for args, cwd in commands:
        started.append(
            subprocess.Popen(
                ["git", "-c", "core.quotePath=false", *args],
                cwd=cwd,
                env=git.clean_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                errors="surrogateescape",
            )
        )
    results = []
    for process in started:
        out, _ = process.communicate()
        results.append((process.returncode, out))
    return results


def resolve_many(root: Path, revisions: Sequence[str]) -> dict[str, str]:
    """Each revision's hash, from one ``git cat-file`` batch; unknown ones are left out.

    ``rev-parse`` stops at the first unknown name, so the batch goes through cat-file instead.
    """
    if not revisions:
        return {}
    done = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objectname)"],
        cwd=root,
        env=git.clean_env(),
        input="\n".join(revisions) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.splitlines()
    return {
        revision: line.strip()
        for revision, line in zip(revisions, lines, strict=False)
        if line.strip() and not line.endswith("missing")
    }


def is_ancestor(root: Path, older: str, newer: str) -> bool:
    try:
        git.run(["merge-base", "--is-ancestor", older, newer], cwd=root)
    except GitError:
        return False
    return True


def parents(root: Path, commit: str) -> list[str]:
    return git.run(["rev-list", "--parents", "-n", "1", commit], cwd=root).split()[1:]


def reviewed_commit(root: Path, head: str, main: str) -> str:
    """The branch's own work under merges of main into it: what review and gates judged.

    Merging main into a branch (by ``merge`` or by hand) does not change what was reviewed, so
    approvals and gate verdicts of the first parent carry over; the merged tree itself is
    judged by the final gate before main moves.
    """
    commit = head
    while True:
        found = parents(root, commit)
        if len(found) == 2 and is_ancestor(root, found[1], main):
            commit = found[0]
            continue
        return commit
