"""The worktree lifecycle: new, list, review, merge (with the conflict gate) and cleanup."""
