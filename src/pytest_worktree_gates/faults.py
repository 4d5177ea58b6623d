"""Crash points for the reliability tests: ``kill -9`` ourselves at a named stage.

Only the tests set ``WORKTREE_GATES_CRASH_AT``; it is how they prove that a crash between any
two steps of ``merge`` leaves main unchanged and nothing that blocks the next run. A real
SIGKILL (not an exception) means no cleanup code of ours gets a chance to run.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "WORKTREE_GATES_CRASH_AT"


def checkpoint(stage: str) -> None:
    if os.environ.get(VARIABLE) == stage:
        os.kill(os.getpid(), signal.SIGKILL)
