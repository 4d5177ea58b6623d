"""What ``list`` and ``status NAME`` show: every registered worktree's facts, read in batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_worktree_gates import config as config_module
from pytest_worktree_gates import git, state
from pytest_worktree_gates.config import Config
from pytest_worktree_gates.worktrees import facts, plan, readiness, registry


@dataclass(frozen=True)
class Overview:
    name: str
    branch: str
    path: str
    variant: str
    description: str
    state: str  # the registry's (ready, failed, merged, ...), or "missing" without a directory
    dirty: bool | None
    ahead: int | None
    behind: int | None
    tree: str | None  # the current committed tree when clean
    merging: bool
    gates: dict[str, str]
    review: plan.ReviewOutcome
    databases: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def collect(repo: git.Repo, config: Config, only: Sequence[str] = ()) -> list[Overview]:
    with state.connect(repo.state_dir) as db:
        items = [item for item in registry.every(db) if not only or item.name in only]
        leases = db.execute("SELECT worktree, engine, port FROM port_leases").fetchall()
        services = dict(
            ((row[0], row[1]), row[2])
            for row in db.execute("SELECT worktree, engine, backend FROM services")
        )
    main = config.main_branch
    present = [item for item in items if item.path.is_dir()]
    commands = [
        (["status", "--porcelain", "--untracked-files=normal"], item.path) for item in present
    ] + [
        (["rev-list", "--left-right", "--count", f"refs/heads/{main}...refs/heads/{item.branch}"],
         repo.root)
        for item in items
    ]  # fmt: skip
    results = facts.run_many(commands)
    dirty = {item.name: bool(out.strip()) for item, (_, out) in zip(present, results, strict=False)}
    counts = {}
    for item, (code, out) in zip(items, results[len(present) :], strict=True):
        parts = out.split()
        counts[item.name] = (
            (int(parts[1]), int(parts[0])) if code == 0 and len(parts) == 2 else None
        )
    trees = facts.resolve_many(repo.root, [f"refs/heads/{item.branch}^{{tree}}" for item in items])
    found = []
    with state.connect(repo.state_dir) as db:
        for item in items:
            own = config_module.load(item.path) if item.path.is_dir() else config
            tree = trees.get(f"refs/heads/{item.branch}^{{tree}}")
            current = tree if item.path.is_dir() and not dirty.get(item.name) else None
            checked = [current] if current else []
            databases = tuple(
                f"{engine}:{port} ({services.get((worktree, engine), 'leased')})"
                for worktree, engine, port in leases
                if worktree == str(item.git_dir)
            )
            ahead, behind = counts[item.name] or (None, None)
            found.append(
                Overview(
                    name=item.name,
                    branch=item.branch,
                    path=str(item.path),
                    variant=item.variant,
                    description=item.description,
                    state=item.state if item.path.is_dir() else "missing",
                    dirty=dirty.get(item.name),
                    ahead=ahead,
                    behind=behind,
                    tree=current,
                    merging=(item.git_dir / "MERGE_HEAD").exists(),
                    gates=readiness.gate_states(db, own, str(item.git_dir), checked),
                    review=readiness.review(db, item.name, checked),
                    databases=databases,
                )
            )
    return found


def steps(overview: Overview, config: Config) -> list[plan.Step]:
    variant = config.variants.get(overview.variant) or config.variant_named(config.variant)
    return plan.pipeline(
        overview.name,
        variant,
        overview.gates,
        overview.review,
        dirty=bool(overview.dirty),
        behind=overview.behind or 0,
        merging=overview.merging,
        merged=overview.state == registry.MERGED,
    )
