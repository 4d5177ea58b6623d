"""Repo facts behind one small API, read with git plumbing.

Plumbing commands are cheaper than a GitPython ``Repo`` for the handful of facts a gate needs,
and every child gets a clean environment: a gate run from inside a git hook must not inherit
``GIT_DIR`` or ``GIT_INDEX_FILE`` and read the wrong repository or index.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates.errors import GitError

# Defined with the hook's early start, which must not import this module; used from here.
from pytest_worktree_gates.hookstart import INDEX_VARIABLES as INDEX_VARIABLES
from pytest_worktree_gates.hookstart import REPO_VARIABLES as REPO_VARIABLES
from pytest_worktree_gates.hookstart import clean_env as clean_env


def run(args: list[str], cwd: Path, *, check: bool = True, keep_index: bool = False) -> str:
    """Run ``git ARGS`` in ``cwd`` and return its stdout; a failure becomes a GitError.

    ``keep_index`` keeps ``GIT_INDEX_FILE``: inside a commit hook the index being committed
    may be a temporary one (``git commit -a``), and staged content must be read from it.
    """
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotePath=false", *args],
            cwd=cwd,
            env=clean_env(keep=INDEX_VARIABLES if keep_index else ()),
            capture_output=True,
            text=True,
            errors="surrogateescape",  # file names and contents need not be UTF-8
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed; install git and try again") from None
    if check and done.returncode != 0:
        message = done.stderr.strip().splitlines()
        raise GitError(f"git {' '.join(args)} failed: {message[-1] if message else 'no output'}")
    return done.stdout


@dataclass(frozen=True)
class Repo:
    """One worktree of a repository: where its files are and where its git data lives."""

    root: Path
    git_dir: Path
    common_dir: Path

    @property
    def state_dir(self) -> Path:
        """Shared by every worktree of the repo."""
        return self.common_dir / "worktree-gates"


def find_repo(path: Path) -> Repo | None:
    """The worktree that contains ``path``, or None outside a git work tree."""
    try:
        out = run(
            ["rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"], cwd=path
        )
    except GitError:
        return None
    lines = out.splitlines()
    if len(lines) != 3:
        return None
    root, git_dir, common = (Path(line) for line in lines)
    if not common.is_absolute():
        common = (path / common).resolve()
    return Repo(root=root, git_dir=git_dir, common_dir=common.resolve())


def is_clean(root: Path) -> bool:
    """No staged, unstaged or untracked (and not ignored) change."""
    return run(["status", "--porcelain", "--untracked-files=normal"], cwd=root).strip() == ""


def head_tree(root: Path) -> str | None:
    out = run(["rev-parse", "--verify", "--quiet", "HEAD^{tree}"], cwd=root, check=False)
    return out.strip() or None


def clean_tree(root: Path) -> str | None:
    """The tree hash of HEAD when the working tree equals it exactly, else None."""
    return head_tree(root) if is_clean(root) else None


COMMIT_HASH = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def resolve_commit(root: Path, ref: str) -> str:
    out = run(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
        cwd=root,
        check=False,
    ).strip()
    # A range such as main..HEAD prints two lines: only a single commit is a ref here.
    if not COMMIT_HASH.fullmatch(out):
        raise GitError(f"unknown git ref {ref!r}; check the name with `git branch -a`")
    return out


def merge_base(root: Path, ref: str) -> str:
    """The commit where HEAD forked from ``ref``: the base of "changed lines"."""
    commit = resolve_commit(root, ref)
    if head_tree(root) is None:
        raise GitError("HEAD has no commit yet; commit once before measuring changed lines")
    out = run(["merge-base", "HEAD", commit], cwd=root, check=False)
    if not out.strip():
        raise GitError(f"HEAD and {ref!r} share no history; pass --gates-base=REF")
    return out.strip()


def changed_lines(root: Path, base: str) -> dict[str, set[int]]:
    """Lines added or changed in the working tree (staged and unstaged) since ``base``."""
    diff = run(
        ["diff", "--no-color", "--no-ext-diff", "--unified=0", "--src-prefix=a/",
         "--dst-prefix=b/", base, "--"],
        cwd=root,
    )  # fmt: skip
    return parse_unified_diff(diff)


HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def parse_unified_diff(diff: str) -> dict[str, set[int]]:
    """Map each file of a ``-U0`` diff to the line numbers its new side adds.

    Hunk bodies are skipped by count, not by looks: an added line that reads ``++ x`` shows as
    ``+++ x`` and must not be taken for the next file's header.
    """
    changed: dict[str, set[int]] = {}
    current: set[int] | None = None
    body = 0  # lines of the current hunk still to skip
    for line in diff.split("\n"):
        if body > 0:
            if not line.startswith("\\"):  # "\ No newline at end of file" is not a body line
                body -= 1
            continue
        if line.startswith("+++ "):
            target = _unquote(line[4:])
            current = None if target == "/dev/null" else changed.setdefault(target[2:], set())
        elif line.startswith("@@") and (match := HUNK.match(line)):
            old, start, new = int(match.group(1) or "1"), int(match.group(2)), match.group(3)
            count = int(new or "1")
            body = old + count
            if current is not None:
                current.update(range(start, start + count))
    return {path: lines for path, lines in changed.items() if lines}


ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(name: str) -> str:
    """Undo git's C-style quoting of unusual file names (octal escapes are UTF-8 bytes)."""
    name = name.rstrip("\t")
    if not (name.startswith('"') and name.endswith('"')):
        return name
    raw = bytearray()
    chars = iter(name[1:-1])
    for char in chars:
        if char != "\\":
            raw += char.encode("utf-8", "surrogateescape")
            continue
        escaped = next(chars, "")
        if escaped.isdigit():
            raw.append(int(escaped + next(chars, "") + next(chars, ""), 8))
        else:
            raw.append(ESCAPES.get(escaped, ord(escaped or "\\")))
    return raw.decode("utf-8", "surrogateescape")


def tracked_files(root: Path, globs: Iterable[str]) -> list[str]:
    """Tracked files matching any of ``globs`` (matched anywhere in the tree)."""
    patterns = [f":(glob)**/{glob}" for glob in globs]
    out = run(["ls-files", "-z", "--", *patterns], cwd=root)
    return [name for name in out.split("\0") if name]
