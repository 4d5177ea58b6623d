"""Run a gate the one way every caller runs it: the ledger first, else ``pytest --gates=GATE``.

``gate run`` and ``merge`` share this, so a merge never re-runs a gate that already passed for
the exact tree and configuration, and a verdict it records is the same as any other.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_worktree_gates import git, state
from pytest_worktree_gates.config import Config


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    from_ledger: bool  # True: it had passed for this tree already and was not run
    tree: str | None = None  # the clean tree the gate was judged for, when there was one


def passed_before(config: Config, repo: git.Repo, gate: str, tree: str | None) -> bool:
    if tree is None:
        return False
    with state.connect(repo.state_dir) as connection:
        verdict = state.lookup(connection, gate, tree, config.digest())
    return verdict is not None and verdict.passed


def run_gate(
    config: Config,
    repo: git.Repo,
    gate: str,
    *,
    rerun: bool = False,
    pytest_args: Sequence[str] = (),
) -> Outcome:
    config.gate(gate)  # an unknown gate is one clear error before anything runs
    tree = git.clean_tree(repo.root)
    if not rerun and passed_before(config, repo, gate, tree):
        return Outcome(0, True, tree)
    command = [sys.executable, "-m", "pytest", f"--gates={gate}", *pytest_args]
    done = subprocess.run(command, cwd=config.root, env=git.clean_env(), check=False)
    return Outcome(done.returncode, False)
