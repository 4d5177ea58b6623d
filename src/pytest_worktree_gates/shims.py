"""The git hook shims and their installation into the repo's hooks directory.

A shim bakes nothing in: it finds the interpreter of the worktree it runs in (its ``.venv``,
else ``python3``) when git calls it. The hooks directory is shared by all worktrees of a repo,
so a path fixed at install time would break every worktree once the one it named was deleted.
The shims kept in the project's ``hooks/`` folder are exactly :func:`shim_text`'s output.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates import git
from pytest_worktree_gates.errors import GatesError

STAGES = ("pre-commit", "pre-push")
MARKER = "# worktree-gates hook shim"
BACKUP_SUFFIX = ".worktree-gates-backup"

_SHIM = """\
#!/bin/sh
{marker} ({stage}): `worktree-gates hooks install` wrote it, `uninstall` removes it.
# Nothing is baked in: it runs this worktree's .venv python, else python3 from PATH.
if [ -e .git ]; then root=$PWD; else root=$(git rev-parse --show-toplevel 2>/dev/null) || root=.; fi
python=python3
for candidate in "$root/.venv/bin/python" "$root/.venv/Scripts/python.exe"; do
    if [ -x "$candidate" ]; then python=$candidate; break; fi
done
exec "$python" -c '
import sys
try:
    from pytest_worktree_gates.hookmain import main, shim_exit
except ImportError:
    sys.exit("worktree-gates: " + sys.executable + " lacks pytest-worktree-gates (or has a "
             "release older than this hook); pip install -U pytest-worktree-gates, or skip "
             "the hook with --no-verify")
shim_exit(main(sys.argv[1:]))
' {stage} "$@"
"""


def shim_text(stage: str) -> str:
    return _SHIM.format(marker=MARKER, stage=stage)


def hooks_dir(root: Path) -> Path:
    """Where git looks for hooks: honours core.hooksPath and is shared by linked worktrees."""
    out = git.run(["rev-parse", "--git-path", "hooks"], cwd=root).strip()
    return (root / out).resolve()


def default_hooks_dir(repo: git.Repo) -> Path:
    return repo.common_dir / "hooks"


@dataclass(frozen=True)
class HookFile:
    stage: str
    path: Path
    state: str  # missing | ours | stale | inert | foreign

    @property
    def backup(self) -> Path:
        return self.path.with_name(self.path.name + BACKUP_SUFFIX)


def classify(path: Path, stage: str) -> str:
    """Pure apart from reading the file: what is at ``path``, from our point of view."""
    if not path.exists():
        return "missing"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "foreign"
    if MARKER not in text:
        return "foreign"
    if text != shim_text(stage):
        return "stale"
    if not os.access(path, os.X_OK):
        return "inert"
    return "ours"


def inspect(directory: Path) -> list[HookFile]:
    return [HookFile(s, directory / s, classify(directory / s, s)) for s in STAGES]


def install(directory: Path, force: bool) -> list[str]:
    """Write the shims; a foreign hook blocks unless ``force``, which backs it up first."""
    hooks = inspect(directory)
    foreign = [hook for hook in hooks if hook.state == "foreign"]
    if foreign and not force:
        names = ", ".join(str(hook.path) for hook in foreign)
        raise GatesError(
            f"{names}: a hook that is not ours is installed; nothing changed. Rerun with "
            f"--force to move it to {foreign[0].path.name}{BACKUP_SUFFIX} (uninstall puts it back)"
        )
    for hook in foreign:
        if hook.backup.exists():
            raise GatesError(
                f"{hook.backup} already exists; nothing changed. Move it away, then rerun"
            )
    directory.mkdir(parents=True, exist_ok=True)
    done = []
    for hook in hooks:
        if hook.state == "ours":
            done.append(f"{hook.stage}: already installed in {directory}")
            continue
        if hook.state == "foreign":
            hook.path.rename(hook.backup)
            done.append(f"{hook.stage}: backed up the existing hook to {hook.backup.name}")
        temporary = hook.path.with_name(f".{hook.stage}.worktree-gates-new")
        temporary.write_text(shim_text(hook.stage))
        temporary.chmod(temporary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        temporary.replace(hook.path)  # atomic: git never runs a half-written hook
        done.append(f"{hook.stage}: installed {hook.path}")
    return done


def uninstall(directory: Path) -> list[str]:
    """Remove our shims and put back what ``install --force`` moved aside."""
    done = []
    for hook in inspect(directory):
        if hook.state == "foreign":
            done.append(f"{hook.stage}: {hook.path} is not ours; left alone")
            continue
        if hook.state != "missing":
            hook.path.unlink()
            done.append(f"{hook.stage}: removed {hook.path}")
        if hook.backup.exists():
            hook.backup.rename(hook.path)
            done.append(f"{hook.stage}: restored the previous hook from {hook.backup.name}")
        elif hook.state == "missing":
            done.append(f"{hook.stage}: not installed")
    return done
