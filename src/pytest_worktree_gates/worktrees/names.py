"""What a worktree may be called, and where its branch and directory go.

A name becomes a branch (``feature/NAME``), a directory and part of container names, so it is a
boring slug: a name that git, the shell and Docker all read the same way.
"""

from __future__ import annotations

import re

from pytest_worktree_gates.errors import GatesError

SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def check_name(name: str) -> str:
    """``name`` if it is a safe slug, else one error that says what is allowed."""
    allowed = (
        "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit "
        "(at most 63 characters), e.g. `add-login`"
    )
    if not SLUG.fullmatch(name):
        raise GatesError(f"invalid worktree name {name!r}: {allowed}")
    # What git refuses in a ref name, and what would read as a path trick.
    if ".." in name or name.endswith((".", ".lock")):
        raise GatesError(f"invalid worktree name {name!r}: no '..', no trailing '.' or '.lock'")
    return name


def branch_for(prefix: str, name: str) -> str:
    return f"{prefix}{name}"
