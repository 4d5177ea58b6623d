"""``worktree-gates doctor``: what stops the hooks and gates from working here, and the fix."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_worktree_gates import diagnose, hookmain


def add_parser(verbs: Any) -> None:
    doctor = verbs.add_parser(
        "doctor",
        help="diagnose hooks, tools, Docker and config, each with its fix",
        description="Check that the git hooks are installed and live, that no foreign or stale "
        "hook or core.hooksPath gets in their way, that every check's tool is installed, that "
        "the Docker engine answers when databases need it, and that the config loads. Exit 0 "
        "when all is well, 1 when something needs fixing.",
    )
    doctor.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    repo = hookmain.find_repo("run doctor from your project")
    problems = 0
    for finding in diagnose.examine(repo):
        mark = "ok  " if finding.ok else "FAIL"
        print(f"{mark} {finding.topic}: {finding.message}")
        if not finding.ok:
            problems += 1
            print(f"     fix: {finding.fix}")
    print(f"{problems} problem{'s' * (problems != 1)} found" if problems else "all good")
    return 1 if problems else 0
