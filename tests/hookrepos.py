"""Real repos for hook tests: a project with checks, hooks installed, and a way to commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import commit_all, git, init_repo

PY = sys.executable

# A check that records each run and the files it got, so tests can see what the cache skipped.
LOGGING = "import os, sys\nopen(os.environ['WTG_LOG'], 'a').write(repr(sys.argv[1:]) + '\\n')\n"


def script(folder: Path, name: str, code: str, files: bool = True) -> str:
    """A check command that runs ``code`` with this interpreter (kept outside the repo)."""
    path = folder / f"{name}.py"
    path.write_text(code)
    return f'"{PY}" "{path}"' + (" {files}" if files else "")


def checks_toml(**runs: str) -> str:
    """A checks table with no preset and the given commands (TOML strings via JSON escaping)."""
    lines = [f"{name} = {{ run = {json.dumps(run)} }}" for name, run in runs.items()]
    return '[tool.worktree-gates.checks]\npreset = "none"\n' + "\n".join(lines) + "\n"


def hook_env(log: Path | None = None) -> dict[str, str]:
    """The environment git gets: this interpreter's venv first, as an activated venv would."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(PY).parent), env.get("PATH", "")])
    if log is not None:
        env["WTG_LOG"] = str(log)
    return env


def make_repo(root: Path, pyproject: str = "", files: dict[str, str] | None = None) -> Path:
    """A committed repo with ``pyproject.toml`` (ignored by git, so stashes never touch it)."""
    root.mkdir(parents=True, exist_ok=True)
    init_repo(root)
    (root / "pyproject.toml").write_text(pyproject)
    (root / ".gitignore").write_text("pyproject.toml\n.venv\n__pycache__/\n*.log\n")
    for name, text in (files or {"base.py": "x = 1\n"}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    commit_all(root, "base")
    return root


def hook(
    root: Path, stage: str = "pre-commit", *args: str, log: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run the hook as git would, through ``python -m pytest_worktree_gates``."""
    return subprocess.run(
        [PY, "-m", "pytest_worktree_gates", "hooks", "run", stage, *args],
        cwd=root,
        env=hook_env(log),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def commit(root: Path, *args: str, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "commit", "-q", "-m", "change", *args],
        cwd=root,
        env=hook_env(log),
        capture_output=True,
        text=True,
        check=False,
    )


def install(root: Path) -> None:
    done = subprocess.run(
        [PY, "-m", "pytest_worktree_gates", "hooks", "install"],
        cwd=root,
        env=hook_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def staged(root: Path, name: str) -> str:
    return git(root, "show", f":{name}")


def committed(root: Path, name: str) -> str:
    return git(root, "show", f"HEAD:{name}")


def log_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []
