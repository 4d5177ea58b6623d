"""A warm session's server, found again without the config model, git or the state database.

After :func:`service.ensure` has started or adopted a local server, it writes what a session
needs to reach it (:func:`remember`): ``warm.json`` in the engine's home under the worktree's
git dir. A later session reads it back (:func:`recall`) with plain file reads, and uses it
only when all of these still hold:

- the worktree is the same: the ``.git`` entry found above pytest's root leads to the git dir
  the facts are kept in, and that worktree's root and git dir are the ones recorded, which git
  itself reported when they were written (a moved worktree or a new one at the same path fails);
- the configuration is the same: the key covers the pyproject.toml found from the root, its
  bytes, and every ``WORKTREE_GATES_*`` variable, which can override the backend or a URL;
- the server answers the protocol probe on the recorded port with the worktree's password
  (random per worktree, read from its 0600 file), so it is this worktree's running server.

Anything else returns None and the session takes the full path, which writes the facts anew.
Importing this module costs little: its point is to skip importing the config model and
running ``git rev-parse`` on every warm session.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pytest_worktree_gates.databases.base import HOST, Server, probe, secret_file
from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.hookstart import git_dirs
from pytest_worktree_gates.pyproject import find_pyproject

FILE = "warm.json"
VERSION = 1


def config_key(pyproject: Path | None) -> str:
    """A digest of everything the configuration of a database session is made of."""
    digest = hashlib.sha256(f"{VERSION}\0{pyproject}\0".encode())
    if pyproject is not None:
        digest.update(pyproject.read_bytes())
    for name in sorted(os.environ):
        if name.startswith("WORKTREE_GATES_"):
            digest.update(f"\0{name}={os.environ[name]}".encode())
    return digest.hexdigest()


def facts_file(git_dir: Path, engine: str) -> Path:
    return git_dir / "worktree-gates" / engine / FILE


def remember(
    root: Path, git_dir: Path, pyproject: Path | None, server: Server, database: str
) -> None:
    """Keep what :func:`recall` needs; ``server`` is the admin server, ``database`` the
    worktree's own database on it. Written to a temp file and renamed: never half-read."""
    facts = {
        "root": str(root.resolve()),
        "git_dir": str(git_dir.resolve()),
        "config": config_key(pyproject),
        "backend": server.backend,
        "port": server.port,
        "user": server.user,
        "admin": server.database,
        "database": database,
        "templates": [list(pair) for pair in server.templates],
    }
    path = facts_file(git_dir, server.engine)
    scratch = path.with_name(f"{FILE}.{os.getpid()}")
    scratch.write_text(json.dumps(facts))
    scratch.replace(path)


def forget(git_dir: Path, engine: str) -> None:
    facts_file(git_dir, engine).unlink(missing_ok=True)


def find_git_dir(start: Path) -> tuple[Path, Path] | None:
    """The worktree root at or above ``start`` and its git dir, read from the ``.git`` entry
    (a linked worktree's ``.git`` file names its git dir) as the commit hook reads it."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            dirs = git_dirs(str(folder))
            return None if dirs is None else (folder, Path(dirs[0]))
    return None


def recall(root: Path, engine: str) -> tuple[Server, str] | None:
    """The engine's running admin server and the worktree's database name, if still valid."""
    start = root.resolve()
    found = find_git_dir(start)
    if found is None:
        return None
    top, git_dir = found
    try:
        facts = json.loads(facts_file(git_dir, engine).read_text())
        password = secret_file(git_dir, engine).read_text().strip()
        key = config_key(find_pyproject(start))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(facts, dict)
        or facts.get("root") != str(top)
        or facts.get("git_dir") != str(git_dir)
        or facts.get("config") != key
        or not password
    ):
        return None
    try:
        server = Server(
            engine=engine,
            backend=str(facts["backend"]),
            host=HOST,
            port=int(facts["port"]),
            user=str(facts["user"]),
            password=password,
            database=str(facts["admin"]),
            templates=tuple((str(name), str(value)) for name, value in facts["templates"]),
        )
        database = str(facts["database"])
    except (KeyError, TypeError, ValueError):
        return None
    try:
        if probe(server) is not None:
            return None
    except GatesError:
        return None  # no client library: the full path says so
    return server, database
