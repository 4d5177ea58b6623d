"""The index and the work tree during a commit hook: what is staged, and unstaged work kept safe.

Checks must see exactly what will be committed, so unstaged hunks are set aside while they
run and put back afterwards. The hunks are first written to a patch file in this worktree's
git dir, and only then removed from the work tree: whatever happens next (a crashing check,
Ctrl-C, kill -9), the patch survives, and the next hook run puts it back before anything else.

Every command keeps ``GIT_INDEX_FILE``: ``git commit -a`` and ``git commit PATH`` commit a
temporary index, and that one, not ``.git/index``, is what a hook must check and restage.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from pytest_worktree_gates import git, hookstart
from pytest_worktree_gates.errors import GatesError, GitError

PATCH_NAME = hookstart.PATCH_NAME  # the early start must find it too


@dataclass(frozen=True)
class StagedFile:
    path: str  # relative to the worktree root, as git names it
    blob: str  # the object id of the staged content


def _git_bytes(args: Sequence[str], root: Path, data: bytes | None = None) -> bytes:
    done = subprocess.run(
        ["git", "-c", "core.quotePath=false", *args],
        cwd=root,
        env=git.clean_env(keep=git.INDEX_VARIABLES),
        input=data,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {message[-1] if message else 'no output'}")
    return done.stdout


def _names(out: bytes) -> list[str]:
    return [name.decode("utf-8", "surrogateescape") for name in out.split(b"\0") if name]


@dataclass(frozen=True)
class Status:
    """The index against HEAD and the work tree, from one git call."""

    # Added or modified regular files (deleted ones: nothing to check).
    staged: tuple[StagedFile, ...]
    unstaged: frozenset[str]  # tracked files whose work tree content differs from the index


def status(root: Path) -> Status:
    """What the index stages and what the work tree has unstaged (see hookstart.parse_status)."""
    staged, unstaged = hookstart.parse_status(_git_bytes(hookstart.STATUS, root))
    return Status(tuple(StagedFile(path, blob) for path, blob in staged), frozenset(unstaged))


def unstaged_paths(root: Path) -> set[str]:
    """Tracked files whose work tree content differs from the index."""
    return set(_names(_git_bytes(["diff", "--name-only", "-z", "--ignore-submodules"], root)))


def _literal(paths: Sequence[str]) -> list[str]:
    # Pathspec magic would read "*" or ":" in a hostile name as a pattern.
    return [f":(literal){path}" for path in paths]


def restage(root: Path, paths: Sequence[str]) -> None:
    if paths:
        _git_bytes(["add", "--", *_literal(paths)], root)


def reset_to_index(root: Path, paths: Sequence[str]) -> None:
    """Drop work tree changes to ``paths`` (a fixer's rewrite of a partially staged file)."""
    if paths:
        _git_bytes(["checkout-index", "-f", "-z", "--stdin"], root, _nul(paths))


def _nul(paths: Sequence[str]) -> bytes:
    return b"".join(path.encode("utf-8", "surrogateescape") + b"\0" for path in paths)


def write_tree(root: Path) -> str:
    return _git_bytes(["write-tree"], root).decode().strip()


def patch_path(repo: git.Repo) -> Path:
    """Per worktree: two worktrees committing at once each keep their own unstaged work."""
    return repo.git_dir / hookstart.STATE_DIR / PATCH_NAME


def recover(root: Path, backup: Path) -> bool:
    """Put back unstaged work left by a hook run that was killed; True if there was some."""
    if not backup.exists():
        return False
    try:  # git apply is all or nothing: a patch that does not apply changes no file
        _git_bytes(["apply", "--whitespace=nowarn", str(backup)], root)
    except GitError:
        raise GatesError(
            f"unstaged changes saved by an interrupted hook run are in {backup}, and they no "
            f"longer apply cleanly; look at them, apply what you need with `git apply --reject "
            f"{backup}`, then delete the file"
        ) from None
    backup.unlink()
    return True


class Interrupted(KeyboardInterrupt):
    """A signal ended the hook; raised so that ``finally`` blocks restore the work tree."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass
class _Guard:
    deferring: bool = False
    caught: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.deferring:  # never abandon a restore halfway
            self.caught = signum
            return
        raise Interrupted(signum)


HANDLED = tuple(
    sig for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if sig
)


@contextmanager
def unstaged_set_aside(root: Path, backup: Path, partial: Iterable[str]) -> Iterator[set[str]]:
    """Run the body with the work tree equal to the index; yield the partially staged paths.

    ``partial`` is what :func:`status` found unstaged (the caller has asked already). On exit,
    however the body ends, the unstaged hunks are applied again. The body must leave files it
    rewrote either restaged or reset to the index.
    """
    partial = set(partial)
    guard = _Guard()
    previous = {sig: signal.signal(sig, guard.handle) for sig in HANDLED}
    try:
        if partial:
            patch = _git_bytes(
                ["diff", "--binary", "--no-color", "--no-ext-diff", "--ignore-submodules",
                 "--src-prefix=a/", "--dst-prefix=b/"],
                root,
            )  # fmt: skip
            backup.parent.mkdir(parents=True, exist_ok=True)
            with backup.open("wb") as handle:
                handle.write(patch)
                handle.flush()
                os.fsync(handle.fileno())
            reset_to_index(root, sorted(partial))
        try:
            yield partial
        finally:
            guard.deferring = True
            if partial:
                _put_back(root, backup, sorted(partial))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if guard.caught is not None:
        raise Interrupted(guard.caught)


def _put_back(root: Path, backup: Path, partial: Sequence[str]) -> None:
    try:
        _git_bytes(["apply", "--whitespace=nowarn", str(backup)], root)
    except GitError:
        # Something rewrote a file with unstaged hunks: the unstaged work wins.
        reset_to_index(root, partial)
        _git_bytes(["apply", "--whitespace=nowarn", str(backup)], root)
    backup.unlink()
