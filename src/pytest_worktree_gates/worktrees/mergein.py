"""Merge main into a feature branch through the conflict gate.

The common case never touches the worktree until the merge is whole: ``git merge-tree`` merges
in the object store, the safe rules of :mod:`conflicts` resolve what they can in a private
index, and only a finished merge commit is checked out (a fast-forward of the branch). So a crash
at any point leaves either the old branch or the merged one, never a half-merge. Only when a
human must decide is a real ``git merge`` left in progress in the worktree, with ``rerere``
on so that a resolution made once is reused.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates import faults, git
from pytest_worktree_gates.errors import GatesError, GitError
from pytest_worktree_gates.worktrees import conflicts

REGULAR = ("100644", "100755")


@dataclass(frozen=True)
class Conflict:
    path: str
    lines: tuple[int, ...]  # conflict marker lines in the working file


@dataclass(frozen=True)
class MergeIn:
    commit: str | None  # the merge commit, None when a human must decide
    conflicts: tuple[Conflict, ...]
    resolved: tuple[str, ...]  # "path (rule, ...)" of what the safe rules resolved


def _git(root: Path, args: list[str], *, env: dict[str, str] | None = None, stdin: str = "") -> str:
    done = subprocess.run(
        ["git", "-c", "core.quotePath=false", *args],
        cwd=root,
        env=env or git.clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise GitError(f"git {' '.join(args)} failed: {lines[-1] if lines else 'no output'}")
    return done.stdout


def parse_merge_tree(out: str) -> tuple[str, dict[str, dict[int, tuple[str, str]]]]:
    """The tree and, per conflicted path, stage -> (mode, blob) from ``merge-tree --write-tree``."""
    lines = out.split("\n")
    stages: dict[str, dict[int, tuple[str, str]]] = {}
    for line in lines[1:]:
        if not line:
            break  # the informational messages follow a blank line
        info, _, path = line.partition("\t")
        mode, blob, stage = info.split()
        stages.setdefault(path, {})[int(stage)] = (mode, blob)
    return lines[0].strip(), stages


def _text(root: Path, blob: str) -> str | None:
    data = subprocess.run(
        ["git", "cat-file", "blob", blob], cwd=root, env=git.clean_env(), capture_output=True
    ).stdout
    if b"\0" in data:
        return None  # binary: no text rule applies
    return data.decode("utf-8", "surrogateescape")


def _resolve(root: Path, path: str, entries: dict[int, tuple[str, str]]) -> tuple[str, str] | None:
    """(mode, merged text) when the safe rules resolve the whole file."""
    if 2 not in entries or 3 not in entries:
        return None  # modified on one side, deleted on the other: a decision
    (mode, ours_blob), (their_mode, theirs_blob) = entries[2], entries[3]
    if mode != their_mode or mode not in REGULAR:
        return None
    base = _text(root, entries[1][1]) if 1 in entries else ""
    ours, theirs = _text(root, ours_blob), _text(root, theirs_blob)
    if base is None or ours is None or theirs is None:
        return None
    result = conflicts.resolve(path, base, ours, theirs)
    return (mode, result.text) if result.text is not None else None


def _tree_with(root: Path, tree: str, files: dict[str, tuple[str, str]]) -> str:
    """``tree`` with ``files`` replaced, built in a private index so the worktree is untouched."""
    with tempfile.TemporaryDirectory(prefix="wtg-merge-") as scratch:
        env = {**git.clean_env(), "GIT_INDEX_FILE": str(Path(scratch) / "index")}
        _git(root, ["read-tree", tree], env=env)
        for path, (mode, text) in files.items():
            blob = _git(root, ["hash-object", "-w", "--stdin"], stdin=text).strip()
            _git(root, ["update-index", "--cacheinfo", f"{mode},{blob},{path}"], env=env)
        return _git(root, ["write-tree"], env=env).strip()


def unmerged_paths(root: Path) -> list[str]:
    out = _git(root, ["diff", "--name-only", "--diff-filter=U", "-z"])
    return sorted({name for name in out.split("\0") if name})


def merge_in(root: Path, main_commit: str, message: str) -> MergeIn:
    """Merge ``main_commit`` into the branch checked out at ``root`` (clean), or stop."""
    done = subprocess.run(
        ["git", "-c", "core.quotePath=false", "merge-tree", "--write-tree", "HEAD", main_commit],
        cwd=root,
        env=git.clean_env(),
        capture_output=True,
        text=True,
        errors="surrogateescape",
        check=False,
    )
    if done.returncode not in (0, 1):
        raise GitError(f"git merge-tree failed: {done.stderr.strip() or 'no output'}")
    tree, stages = parse_merge_tree(done.stdout)
    resolved: dict[str, tuple[str, str]] = {}
    for path, entries in stages.items():
        found = _resolve(root, path, entries)
        if found is not None:
            resolved[path] = found
    names = tuple(sorted(resolved))
    if len(resolved) == len(stages):
        if resolved:
            tree = _tree_with(root, tree, resolved)
        commit = _git(
            root, ["commit-tree", tree, "-p", "HEAD", "-p", main_commit, "-m", message]
        ).strip()
        faults.checkpoint("merge-committed")
        _git(root, ["merge", "--ff-only", "--quiet", commit])
        return MergeIn(commit, (), names)
    return _leave_for_a_human(root, main_commit, message, resolved)


def _leave_for_a_human(
    root: Path, main_commit: str, message: str, resolved: dict[str, tuple[str, str]]
) -> MergeIn:
    subprocess.run(
        ["git", "merge", "--no-ff", "--no-commit", "-m", message, main_commit],
        cwd=root,
        env=git.clean_env(),
        capture_output=True,
        check=False,  # exit 1 is the expected "conflicts" outcome
    )
    for path, (_, text) in resolved.items():
        (root / path).write_bytes(text.encode("utf-8", "surrogateescape"))
        _git(root, ["add", "--", path])
    left = unmerged_paths(root)
    if not left:  # rerere remembered the rest
        return MergeIn(finish(root), (), tuple(sorted(resolved)))
    found = []
    for path in left:
        file = root / path
        text = file.read_text(errors="surrogateescape") if file.is_file() else ""
        found.append(Conflict(path, tuple(conflicts.marker_lines(text))))
    return MergeIn(None, tuple(found), tuple(sorted(resolved)))


def finish(root: Path) -> str:
    """Commit a merge a human resolved: no unmerged path and no conflict marker may remain."""
    for path in unmerged_paths(root):
        file = root / path
        text = file.read_text(errors="surrogateescape") if file.is_file() else ""
        lines = conflicts.marker_lines(text)
        if lines:
            raise GatesError(
                f"{path} still has conflict markers (line {', '.join(map(str, lines[:5]))}); "
                "edit them out, then run --continue again"
            )
        _git(root, ["add", "--all", "--", path])
    check_markers(root, "HEAD", cached=True)
    _git(root, ["commit", "--no-edit", "--quiet"])
    return _git(root, ["rev-parse", "HEAD"]).strip()


def check_markers(root: Path, base: str, *, cached: bool = False) -> None:
    """Refuse when a line added since ``base`` (committed, or staged) is a conflict marker."""
    args = ["diff", "--no-color", "--no-ext-diff", "-U0", "--src-prefix=a/", "--dst-prefix=b/"]
    args += ["--cached", base] if cached else [base, "HEAD"]
    found: list[str] = []
    path = ""
    for line in _git(root, args).splitlines():
        if line.startswith("+++ "):
            path = line[6:]
        elif line.startswith("+") and conflicts.marker_lines(line[1:]):
            found.append(path)
    if found:
        files = ", ".join(sorted(set(found)))
        raise GatesError(
            f"conflict markers in {files}: a commit may not contain them; "
            "edit them out and commit, then merge again"
        )


def enable_rerere(root: Path) -> None:
    """Reuse a recorded resolution next time (the repo's config, shared by its worktrees)."""
    _git(root, ["config", "rerere.enabled", "true"])
    _git(root, ["config", "rerere.autoUpdate", "true"])
