"""``merge``: the local merge queue that moves main only to a tree that passed the final gate.

Under one repo-wide lock (a flock, which the kernel drops when its holder dies, even by
``kill -9``): check the worktree is ready, merge main in through the conflict gate, run the final
gate on the merged tree, then compare-and-swap main from the commit it was merged with to exactly
the tested commit. If main moved meanwhile, the swap fails and the loop merges again. Nothing
writes main before the swap, so a crash at any earlier point leaves main as it was, and a rerun
picks up where the crash left off (the merge commit and the final verdict are both reused).
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates import config as config_module
from pytest_worktree_gates import faults, git, state
from pytest_worktree_gates.errors import GatesError, GitError
from pytest_worktree_gates.gates.runner import passed_before, run_gate
from pytest_worktree_gates.worktrees import facts, mergein, plan, readiness, registry

CONFLICTS_EXIT = 3
MAX_ROUNDS = 10  # main moving ten times during one final gate is a busy repo, not a loop


@dataclass(frozen=True)
class Landed:
    before: str
    after: str
    tree: str
    checkout_note: str


@contextmanager
def merge_lock(state_dir: Path) -> Iterator[None]:
    path = state_dir / "merge.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("merge: another merge is running; waiting for it to finish", flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def main_commit(root: Path, main: str) -> str:
    commit = facts.rev(root, f"refs/heads/{main}")
    if not commit:
        raise GatesError(
            f"the main branch {main!r} does not exist; create it, or set "
            "[tool.worktree-gates] main-branch to the branch that merges land on"
        )
    return commit


def check_checkout(item: registry.Worktree, resume: bool) -> None:
    """The worktree exists, is on its branch and is not mid-merge (unless continuing)."""
    root = item.path
    if not root.is_dir():
        raise GatesError(
            f"worktree {item.name}: its directory {root} is missing (deleted by hand?); "
            f"run `worktree-gates cleanup {item.name}` to remove what is left"
        )
    branch = git.run(["symbolic-ref", "-q", "HEAD"], root, check=False).strip()
    if not branch:
        raise GatesError(
            f"worktree {item.name} has a detached HEAD; run `git switch {item.branch}` in "
            f"{root} first"
        )
    if branch != f"refs/heads/{item.branch}":
        raise GatesError(
            f"worktree {item.name} is on {branch.removeprefix('refs/heads/')}, not "
            f"{item.branch}; run `git switch {item.branch}` in {root} first"
        )
    merging = facts.rev(root, "MERGE_HEAD")
    if merging and not resume:
        raise GatesError(
            f"worktree {item.name} is in the middle of a merge; resolve the conflicts in {root}, "
            f"then run `worktree-gates merge {item.name} --continue` (or `git merge --abort`)"
        )
    if merging:
        commit = mergein.finish(root)
        print(f"merge: committed your resolution as {commit[:12]}")


def check_clean(item: registry.Worktree) -> None:
    files = facts.uncommitted(item.path)
    if files:
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        raise GatesError(
            f"worktree {item.name} has uncommitted changes ({shown}); commit or stash them "
            "first: only a committed tree can pass a gate"
        )


def check_ready(repo: git.Repo, item: registry.Worktree, main: str) -> None:
    config = config_module.load(item.path)
    variant = config.variant_named(item.variant)
    head = git.run(["rev-parse", "HEAD"], item.path).strip()
    reviewed = facts.reviewed_commit(item.path, head, main)
    out = git.run(["rev-parse", f"{head}^{{tree}}", f"{reviewed}^{{tree}}"], item.path)
    trees = list(dict.fromkeys(out.split()))
    with state.connect(repo.state_dir) as db:
        gates = readiness.gate_states(db, config, str(item.git_dir), trees)
        review = readiness.review(db, item.name, trees)
    found = plan.blockers(item.name, variant, gates, review)
    if found:
        lines = "\n".join(f"  - {line}" for line in found)
        raise GatesError(f"worktree {item.name} is not ready to merge:\n{lines}")


def primary_checkout(root: Path, main: str) -> Path | None:
    for checkout in facts.checkouts(root):
        if checkout.branch == f"refs/heads/{main}":
            return checkout.path
    return None


def _clean_at(path: Path) -> bool:
    return not git.run(["status", "--porcelain", "--untracked-files=no"], path).strip()


def _pending(state_dir: Path) -> Path:
    return state_dir / "main-checkout.pending"


def move_main(
    state_dir: Path, repo_root: Path, main: str, before: str, after: str, name: str
) -> str | None:
    """Compare-and-swap main ``before`` -> ``after``; a note on its checkout, None if it moved.

    When main is checked out clean, its files follow the ref. That takes two steps, so the
    intent is written down first: a crash between them is finished by the next merge
    (:func:`finish_checkout`) instead of leaving the checkout looking like a reverse change.
    """
    checkout = primary_checkout(repo_root, main)
    clean = checkout is not None and _clean_at(checkout)
    if clean and checkout is not None:
        _pending(state_dir).write_text(f"{checkout}\n{before}\n{after}\n")
    try:
        git.run(["update-ref", "-m", f"worktree-gates merge {name}", f"refs/heads/{main}",
                 after, before], repo_root)  # fmt: skip
    except GitError:  # main is no longer ``before``
        _pending(state_dir).unlink(missing_ok=True)
        return None
    faults.checkpoint("main-moved")
    if checkout is None:
        return f"{main} is not checked out anywhere: moved the ref only"
    if clean:
        finish_checkout(state_dir)
        return f"updated the files of {main}'s checkout at {checkout}"
    return (
        f"{main} is checked out with local changes at {checkout}: moved the ref only; to update "
        f"its files, keeping your changes, run `git read-tree -m -u {before[:12]} {after[:12]}` "
        "there"
    )


def finish_checkout(state_dir: Path) -> None:
    """Bring main's clean checkout from ``before`` to ``after`` if a crash left it behind."""
    pending = _pending(state_dir)
    if not pending.exists():
        return
    lines = pending.read_text().splitlines()
    if len(lines) == 3:
        checkout, before, after = Path(lines[0]), lines[1], lines[2]
        head = facts.rev(checkout, "HEAD")
        index = git.run(["write-tree"], checkout, check=False).strip()
        old_tree = git.run(["rev-parse", f"{before}^{{tree}}"], checkout, check=False).strip()
        unstaged = git.run(["diff", "--name-only"], checkout, check=False).strip()
        # Only the exact leftover of our own two steps is finished; anything else is the user's.
        if head == after and index == old_tree and not unstaged:
            git.run(["read-tree", "-m", "-u", before, after], checkout)
    pending.unlink(missing_ok=True)


def land(repo: git.Repo, item: registry.Worktree, main: str) -> Landed | int:
    """Merge main in, pass the final gate, swap main; repeat while main moves. An exit code
    when it stops."""
    repo_root = item.path
    mergein.enable_rerere(repo_root)
    for _ in range(MAX_ROUNDS):
        before = main_commit(repo_root, main)
        if not facts.is_ancestor(repo_root, before, "HEAD"):
            result = mergein.merge_in(repo_root, before, f"Merge {main} into {item.branch}")
            for path in result.resolved:
                print(f"merge: resolved {path} automatically (a provably safe conflict)")
            if result.commit is None:
                report_conflicts(item, result.conflicts)
                return CONFLICTS_EXIT
        mergein.check_markers(repo_root, before)
        faults.checkpoint("merged")
        config = config_module.load(repo_root)
        here = git.find_repo(repo_root) or repo
        outcome = run_gate(config, here, "final")
        faults.checkpoint("tested")
        tree = git.clean_tree(repo_root)
        if tree is None or not passed_before(config, here, "final", tree):
            print(
                f"merge: the final gate did not pass on the merged tree (exit "
                f"{outcome.exit_code}); {main} is untouched. Fix it in {item.path}, commit, "
                f"and run `worktree-gates merge {item.name}` again",
                file=sys.stderr,
            )
            return 1
        after = git.run(["rev-parse", "HEAD"], repo_root).strip()
        note = move_main(repo.state_dir, repo_root, main, before, after, item.name)
        if note is None:
            print(f"merge: {main} moved while the final gate ran; merging it in again")
            continue
        with state.connect(repo.state_dir) as db:
            registry.record_merge(db, item.name, item.branch, before, after, tree)
        faults.checkpoint("recorded")
        return Landed(before, after, tree, note)
    raise GatesError(f"{main} kept moving during {MAX_ROUNDS} final gates; try again later")


def report_conflicts(item: registry.Worktree, found: tuple[mergein.Conflict, ...]) -> None:
    print(f"merge: conflicts in {item.name} need a human; main is untouched.", file=sys.stderr)
    for conflict in found:
        where = ", ".join(str(line) for line in conflict.lines) or "whole file"
        print(f"  {conflict.path}: conflict markers at line {where}", file=sys.stderr)
    print(
        f"resolve them in {item.path}, then run `worktree-gates merge {item.name} --continue` "
        "(or `git merge --abort` there to back out)",
        file=sys.stderr,
    )


def merge(repo: git.Repo, name: str, main: str, *, resume: bool) -> Landed | int:
    with state.connect(repo.state_dir) as db:
        item = registry.get(db, name)
    with merge_lock(repo.state_dir):
        faults.checkpoint("locked")
        finish_checkout(repo.state_dir)
        check_checkout(item, resume)
        check_clean(item)
        check_ready(repo, item, main_commit(item.path, main))
        return land(repo, item, main)
