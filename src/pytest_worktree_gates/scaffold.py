"""What ``worktree-gates init`` adds to a project: pure text in, text out (or None: unchanged).

Both files are edited as text, by appending, so that a user's comments, order and formatting
survive; the result is parsed again before anything is written.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from pytest_worktree_gates import config
from pytest_worktree_gates.errors import ConfigError, GatesError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

PYPROJECT_SECTION = """\
[tool.worktree-gates]
# pytest-worktree-gates: every key has a default; uncomment a line to change it.
# Reference: docs/configuration.md of pytest-worktree-gates.
# main-branch = "main"
# worktrees-dir = ".worktrees"
# variant = "standard"          # standard | full | hotfix

[tool.worktree-gates.checks]
# Named steps shared by the git hooks and the gates.
# preset = "ruff"               # ruff format + ruff check + mypy; "classic": black, isort,
#                               # ruff, mypy; "none": only the checks below
# Override a preset's step key by key, or add your own:
# format = { run = "ruff format {files}", fixes = true, stage = "pre-commit" }
# lint = { run = "ruff check {files}", stage = "pre-commit", files = ["*.py"] }
# types = { run = "mypy {files}", stage = "pre-push" }

# [tool.worktree-gates.coverage]
# fail-under = 80

# [tool.worktree-gates.gates.unit]
# tests = "not integration"
# checks = ["lint", "types"]
"""

HOOK_IDS = ("worktree-gates", "worktree-gates-types", "worktree-gates-unit")

LOCAL_REPO = """\
- repo: local
  hooks:
    - id: worktree-gates
      name: worktree-gates (format, lint)
      entry: worktree-gates hooks run pre-commit
      language: system
      types: [file]
      require_serial: true
      stages: [pre-commit]
    - id: worktree-gates-types
      name: worktree-gates types
      entry: worktree-gates hooks run pre-push --check types
      language: system
      types: [python]
      require_serial: true
      stages: [pre-push]
    - id: worktree-gates-unit
      name: worktree-gates unit gate
      entry: worktree-gates hooks run pre-push --gate
      language: system
      pass_filenames: false
      always_run: true
      stages: [pre-push]
"""

PRE_COMMIT_HEADER = "# Hooks for the pre-commit framework; `worktree-gates init` added them.\n"


def pyproject(text: str | None) -> str | None:
    """pyproject.toml with a commented ``[tool.worktree-gates]`` section appended, if none."""
    document = _toml(text or "")
    if "worktree-gates" in document.get("tool", {}):
        return None
    base = text or ""
    if base and not base.endswith("\n"):
        base += "\n"
    new = base + ("\n" if base else "") + PYPROJECT_SECTION
    config.parse(_toml(new), None, Path("."))  # what we add must load as a config
    return new


def _toml(text: str) -> dict[str, Any]:
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"pyproject.toml: invalid TOML: {error}; nothing changed") from None
    return document


def pre_commit_config(text: str | None) -> str | None:
    """The framework config with our hooks added (None when they are there already)."""
    if text is None or not text.strip():
        return PRE_COMMIT_HEADER + "repos:\n" + _indent(LOCAL_REPO, "  ")
    import yaml  # pre-commit's dependency; only init and doctor need it

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = str(error).splitlines()[0]
        message = f".pre-commit-config.yaml: invalid YAML ({problem}); nothing changed"
        raise GatesError(message) from None
    repos = document.get("repos") if isinstance(document, dict) else None
    if not isinstance(repos, list):
        raise GatesError(
            ".pre-commit-config.yaml: no `repos:` list at the top level; nothing changed. "
            "Add `repos:` with your hooks, or remove the file and run init again"
        )
    ids = {
        hook.get("id") for repo in repos if isinstance(repo, dict) for hook in repo.get("hooks", [])
    }
    if ids & set(HOOK_IDS):
        return None
    new = _append_repo(text)
    try:
        merged = yaml.safe_load(new)
        appended = merged["repos"][: len(repos)] == repos and len(merged["repos"]) == len(repos) + 1
    except (yaml.YAMLError, KeyError, TypeError):
        appended = False
    if not appended:
        # `repos:` is not the last block of the file: rewrite it whole, hooks all kept.
        document["repos"] = [*repos, yaml.safe_load(LOCAL_REPO)[0]]
        new = PRE_COMMIT_HEADER + yaml.safe_dump(document, sort_keys=False)
    return new


def _append_repo(text: str) -> str:
    """Append our repo to a block-style ``repos:`` list, in that list's own indentation."""
    match = re.search(r"^repos:[ \t]*\n(?:[ \t]*(?:#.*)?\n)*([ \t]*)- ", text, re.MULTILINE)
    indent = match.group(1) if match else ""
    base = text if text.endswith("\n") else text + "\n"
    return base + _indent(LOCAL_REPO, indent)


def _indent(block: str, prefix: str) -> str:
    return "".join(prefix + line if line.strip() else line for line in block.splitlines(True))
