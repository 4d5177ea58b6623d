"""The hook result cache: a check that passed on some content is not run on it again.

A pass is keyed by (check, setup, subject). The setup digest covers everything besides the
content that can change the verdict: the check's own config, the tool's version and the
content of the tool config files. The subject is the blob sha of one staged file, or, for a
check that reads more than the files it is given (mypy follows imports), the whole staged tree.
Only passes are stored: a failure must always be shown again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sqlite3
import subprocess
from pathlib import Path

from pytest_worktree_gates import git
from pytest_worktree_gates.config import Check
from pytest_worktree_gates.hookstart import TOOL_CONFIGS
from pytest_worktree_gates.hookstart import passed as passed
from pytest_worktree_gates.hookstart import remember as remember

# Tools that read more than the files on their command line.
WHOLE_TREE_TOOLS = frozenset({"mypy", "dmypy", "pyright", "pytype", "pyre"})


def whole_tree(check: Check) -> bool:
    """Is the check's verdict a function of the whole tree rather than of each file?"""
    words = shlex.split(check.run)
    return "{files}" not in check.run or Path(words[0]).name in WHOLE_TREE_TOOLS


def blob_sha(data: bytes) -> str:
    """git's object id for a blob with this content, without asking git."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def tool_version(connection: sqlite3.Connection, path: str) -> str:
    """The tool's ``--version``, asked once per installed binary (keyed by its stat)."""
    info = os.stat(path)
    stamp = f"{os.path.realpath(path)}:{info.st_size}:{info.st_mtime_ns}"
    row = connection.execute(
        "SELECT version FROM tool_versions WHERE program = ? AND stamp = ?", (path, stamp)
    ).fetchone()
    if row:
        return str(row[0])
    env = git.clean_env()
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, env=env, timeout=30, check=False
        )
        version = (done.stdout or done.stderr).strip() or f"exit {done.returncode}"
    except (OSError, subprocess.TimeoutExpired):
        version = "unknown"
    connection.execute(
        "INSERT OR REPLACE INTO tool_versions (program, stamp, version) VALUES (?, ?, ?)",
        (path, stamp, version),
    )
    return version


def config_blobs(root: Path) -> str:
    """The content ids of the tool config files as the tools will read them: the work tree's.

    (An unstaged edit to pyproject.toml changes what ruff and mypy report, so the index is
    not the right source; and reading a few small files costs less than starting git.)
    """
    found = []
    for name in TOOL_CONFIGS:
        try:
            found.append(f"{name}:{blob_sha((root / name).read_bytes())}")
        except OSError:
            continue
    return ",".join(found)


def setup_digest(check: Check, version: str, configs: str) -> str:
    data = [check.run, check.fixes, list(check.files), version, configs]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:24]
