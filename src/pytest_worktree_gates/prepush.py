"""``hooks run pre-push``: type checks on what the push changes, and the unit gate.

git hands a pre-push hook one line per pushed ref on stdin. The checks of the ``pre-push``
stage run on the files those commits change; the unit gate runs unless the ledger already
holds a pass for the exact tree being pushed, which is the common case after ``pytest --gates``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pytest_worktree_gates import git, hookcache, hookrun, state
from pytest_worktree_gates.config import Config
from pytest_worktree_gates.errors import GatesError

ZERO = re.compile(r"0{40}(?:0{24})?")
GATE = "unit"


@dataclass(frozen=True)
class PushedRef:
    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str

    @property
    def deleted(self) -> bool:
        return bool(ZERO.fullmatch(self.local_sha))

    @property
    def new(self) -> bool:
        return bool(ZERO.fullmatch(self.remote_sha))


def parse_refs(text: str) -> list[PushedRef]:
    """Pure: the lines git writes to a pre-push hook's stdin."""
    refs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4 or not all(git.COMMIT_HASH.fullmatch(sha) for sha in parts[1::2]):
            raise GatesError(
                f"pre-push: cannot read {line!r} from stdin; git writes "
                "'<local ref> <local sha> <remote ref> <remote sha>' lines"
            )
        refs.append(PushedRef(*parts))
    return refs


def fallback_refs(root: Path) -> list[PushedRef]:
    """Without stdin (a manual run, or a framework that keeps it): HEAD, from the given ref."""
    head = git.run(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=root, check=False).strip()
    if not head:
        raise GatesError("pre-push: HEAD has no commit yet; commit before pushing")
    head = os.environ.get("PRE_COMMIT_TO_REF") or head
    base = os.environ.get("PRE_COMMIT_FROM_REF")
    remote = git.resolve_commit(root, base) if base else "0" * len(head)
    return [PushedRef("HEAD", git.resolve_commit(root, head), "", remote)]


def changed_files(root: Path, ref: PushedRef) -> list[str]:
    """Files added or modified by the commits of this push (not on the remote yet)."""
    if ref.deleted:
        return []
    # A new branch, or a force push over history we do not have: judge the new commits.
    base = ref.remote_sha if not ref.new and _has_commit(root, ref.remote_sha) else ""
    if not base:
        new = git.run(["rev-list", "--reverse", ref.local_sha, "--not", "--remotes"], cwd=root)
        commits = new.split()
        if not commits:
            return []
        parents = git.run(["rev-list", "--parents", "-n", "1", commits[0]], cwd=root).split()
        base = parents[1] if len(parents) > 1 else _empty_tree(root)
    out = git.run(
        ["diff", "--name-only", "-z", "--no-renames", "--diff-filter=ACM", base, ref.local_sha],
        cwd=root,
    )
    return [name for name in out.split("\0") if name]


def _has_commit(root: Path, sha: str) -> bool:
    out = git.run(["rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}"], cwd=root, check=False)
    return bool(out.strip())


def _empty_tree(root: Path) -> str:
    return git.run(["hash-object", "-t", "tree", "/dev/null"], cwd=root).strip()


@dataclass(frozen=True)
class Selection:
    """What a pre-push run does: the named checks (all of the stage when none), the gate."""

    names: Sequence[str]
    checks: bool
    gate: bool


def run_pre_push(
    repo: git.Repo,
    config: Config,
    selection: Selection,
    files: Sequence[str] | None,
    refs: Sequence[PushedRef],
    out: TextIO,
) -> hookrun.Report:
    root = repo.root
    report = hookrun.Report("pre-push")
    # A push never rewrites files: fixers of this stage run check-only.
    chosen = hookrun.select(config, "pre-push", selection.names) if selection.checks else []
    checks = [dataclasses.replace(check, fixes=False) for check in chosen]
    pushed = [ref for ref in refs if not ref.deleted]
    if files is None:
        names_changed = sorted({name for ref in pushed for name in changed_files(root, ref)})
    else:
        names_changed = list(files)
    targets = hookrun.file_targets(root, names_changed)
    head_tree = git.head_tree(root)
    clean = git.is_clean(root)
    trees = {_tree_of(root, ref.local_sha): ref for ref in pushed}  # one gate run per tree
    if checks and (targets or any("{files}" not in check.run for check in checks)):
        with state.connect(repo.state_dir) as connection:
            planner = hookrun.Planner(connection, hookcache.config_blobs(root))
            # The tree the tools see is the pushed one only if it is checked out, unchanged.
            tree = head_tree if clean and set(trees) == {head_tree} else None
            steps = [planner.step(check, targets, tree) for check in checks]
            report = hookrun.finish(root, steps, report, connection)
    if selection.gate and GATE in config.gates:
        for tree, ref in trees.items():
            report.outcomes.append(_gate(repo, config, tree, ref, head_tree, clean, out))
    return report


def _tree_of(root: Path, sha: str) -> str:
    return git.run(["rev-parse", f"{sha}^{{tree}}"], cwd=root).strip()


def _gate(
    repo: git.Repo,
    config: Config,
    tree: str,
    ref: PushedRef,
    head_tree: str | None,
    clean: bool,
    out: TextIO,
) -> hookrun.Outcome:
    name = f"gate:{GATE}"
    with state.connect(repo.state_dir) as connection:
        verdict = state.lookup(connection, GATE, tree, config.digest())
    if verdict is not None and verdict.passed:
        print(f"gate {GATE}: already passed for tree {tree[:12]}", file=out)
        return hookrun.Outcome(name, True, (), 1)
    if tree != head_tree:
        return hookrun.Outcome(
            name,
            False,
            (ref.local_ref,),
            0,
            f"tree {tree[:12]} of {ref.local_ref} has no passing unit gate and is not checked "
            f"out here; run `worktree-gates gate run {GATE}` in its worktree, then push again",
        )
    if not clean:
        print(
            f"gate {GATE}: the work tree has uncommitted changes; testing it as it is "
            "(commit them to let the ledger vouch for the tree)",
            file=out,
        )
    print(f"gate {GATE}: running pytest --gates={GATE} for tree {tree[:12]}", file=out)
    out.flush()
    command = [sys.executable, "-m", "pytest", f"--gates={GATE}", "-p", "no:cacheprovider"]
    code = subprocess.run(
        command, cwd=config.root, env=git.clean_env(), stdin=subprocess.DEVNULL, check=False
    ).returncode
    return hookrun.Outcome(
        name, code == 0, (ref.local_ref,), 0, "" if code == 0 else f"pytest exited {code}"
    )
