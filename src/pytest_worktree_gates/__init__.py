"""pytest-worktree-gates: enforced gates for the git worktree-per-feature workflow."""

from __future__ import annotations

__version__ = "0.1.0"
