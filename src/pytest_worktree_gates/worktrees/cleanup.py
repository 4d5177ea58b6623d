"""``cleanup``: remove a worktree's databases, ports, directory and (merged) branch, losing nothing.

Uncommitted changes and commits that are not on main are refused unless ``--force``; even then
the work is first saved under ``refs/worktree-gates/backup/NAME`` (a commit of the branch tip
plus the working tree, untracked files included), so every cleanup can be undone.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates import git, state
from pytest_worktree_gates.config import Config
from pytest_worktree_gates.databases import ports
from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.worktrees import facts, registry

BACKUP_PREFIX = "refs/worktree-gates/backup/"


@dataclass(frozen=True)
class Findings:
    present: bool
    dirty: tuple[str, ...]
    tip: str  # "" when the branch is gone
    unmerged: int  # commits of the branch that main does not have


def inside(cwd: Path, folder: Path) -> bool:
    try:
        cwd.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _presence(item: registry.Worktree) -> tuple[bool, tuple[str, ...]]:
    """Whether the worktree's directory exists, and its uncommitted paths if it does."""
    if not item.path.is_dir():
        return False, ()
    return True, facts.uncommitted(item.path)


def inspect(repo: git.Repo, item: registry.Worktree, main: str) -> Findings:
    present, dirty = _presence(item)
    tip = facts.rev(repo.root, f"refs/heads/{item.branch}")
    unmerged = 0
    if tip:
        main_tip = facts.rev(repo.root, f"refs/heads/{main}")
        if not main_tip:
            raise GatesError(
                f"the main branch {main!r} does not exist, so whether {item.branch} is merged "
                "cannot be told; create main, or pass --force (a backup ref is written first)"
            )
        count = git.run(["rev-list", "--count", f"{main_tip}..{tip}"], repo.root).strip()
        unmerged = int(count or 0)
    return Findings(present, dirty, tip, unmerged)


def refusal(name: str, found: Findings, main: str) -> str | None:
    """Why cleanup without --force would lose work, or None. Pure."""
    reasons = []
    if found.dirty:
        reasons.append(f"{len(found.dirty)} uncommitted change(s) ({', '.join(found.dirty[:3])})")
    if found.unmerged:
        reasons.append(f"{found.unmerged} commit(s) not on {main}")
    if not reasons:
        return None
    return (
        f"worktree {name} has {' and '.join(reasons)}; merge them with `worktree-gates merge "
        f"{name}`, or pass --force (the work is saved to {BACKUP_PREFIX}{name} first)"
    )


def backup(repo: git.Repo, item: registry.Worktree, found: Findings) -> str:
    """Save the branch tip plus every uncommitted change under the backup ref; its commit."""
    commit = found.tip
    if found.present and found.dirty:
        with tempfile.TemporaryDirectory(prefix="wtg-backup-") as scratch:
            env = {**git.clean_env(), "GIT_INDEX_FILE": str(Path(scratch) / "index")}

            def run(*args: str) -> str:
                return subprocess.run(
                    ["git", *args], cwd=item.path, env=env, capture_output=True,
                    text=True, check=True,
                ).stdout.strip()  # fmt: skip

            run("read-tree", "HEAD")
            run("add", "--all")
            tree = run("write-tree")
            parent = ["-p", found.tip] if found.tip else []
            message = f"worktree-gates backup of {item.name}: uncommitted changes"
            commit = run("commit-tree", tree, *parent, "-m", message)
    if commit:
        git.run(["update-ref", f"{BACKUP_PREFIX}{item.name}", commit], repo.root)
    return commit


def release_databases(config: Config, repo: git.Repo, item: registry.Worktree) -> list[str]:
    """Stop and purge the worktree's servers and leases; a missing directory goes through gc."""
    from pytest_worktree_gates.databases import service

    with state.connect(repo.state_dir) as db:
        rows = db.execute(
            "SELECT 1 FROM port_leases WHERE worktree = ? UNION ALL"
            " SELECT 1 FROM services WHERE worktree = ?",
            (str(item.git_dir), str(item.git_dir)),
        ).fetchall()
    if not rows:
        return []
    if item.path.is_dir() and config.databases.engines:
        own = git.Repo(item.path, item.git_dir, repo.common_dir)
        return service.down(service.Place(config, own), purge=True)
    # The directory was deleted by hand: git lists it as prunable, so gc treats it as gone.
    return service.gc(service.Place(config, repo))


def cleanup(repo: git.Repo, config: Config, name: str, *, force: bool, cwd: Path) -> list[str]:
    """Remove worktree ``name``; the lines to tell the user."""
    with state.connect(repo.state_dir) as db:
        item = registry.get(db, name)
    if inside(cwd, item.path):
        primary = facts.primary_root(repo.root)
        raise GatesError(
            f"you are inside worktree {name} ({item.path}); cd to the main checkout "
            f"({primary}) and run `worktree-gates cleanup {name}` there"
        )
    main = config.main_branch
    if force:
        try:
            found = inspect(repo, item, main)
        except GatesError:  # main missing: with --force, treat every commit as unmerged
            found = _without_main(repo, item)
    else:
        found = inspect(repo, item, main)
        why = refusal(name, found, main)
        if why:
            raise GatesError(why)
    said = []
    if found.dirty or found.unmerged:
        commit = backup(repo, item, found)
        said.append(
            f"saved {name}'s work to {BACKUP_PREFIX}{name} ({commit[:12]}); restore it with "
            f"`git worktree add {config.worktrees_dir}/{name}-restored -b "
            f"{item.branch}-restored {BACKUP_PREFIX}{name}`"
        )
    for engine in release_databases(config, repo, item):
        said.append(f"removed databases and ports: {engine}")
    if found.present:
        git.run(["worktree", "remove", "--force", str(item.path)], repo.root)
        said.append(f"removed worktree {item.path}")
    else:
        said.append(f"worktree directory {item.path} was already gone")
    git.run(["worktree", "prune"], repo.root)
    if found.tip and not found.unmerged:
        git.run(["update-ref", "-d", f"refs/heads/{item.branch}", found.tip], repo.root)
        said.append(f"deleted branch {item.branch} (merged into {main})")
    elif found.tip:
        said.append(f"kept branch {item.branch}: it has commits not on {main}")
    with state.connect(repo.state_dir) as db:
        ports.release(db, str(item.git_dir))  # the served app's port, which no engine holds
        registry.remove(db, name, "cleanup --force" if force else "cleanup")
    return said


def _without_main(repo: git.Repo, item: registry.Worktree) -> Findings:
    present, dirty = _presence(item)
    tip = facts.rev(repo.root, f"refs/heads/{item.branch}")
    return Findings(present, dirty, tip, 1 if tip else 0)
