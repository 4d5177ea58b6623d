"""Run configured checks (ruff, mypy, ...) as background processes and count their errors.

A gate starts its checks when the test session starts and collects them when it ends, so they
cost wall time only when they outlast the tests. Known tools are asked for machine-readable
output (and never to rewrite files), so an error count is a count, not a guess from exit codes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import string
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pytest_worktree_gates import git
from pytest_worktree_gates.config import Check
from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.hookstart import matches as matches
from pytest_worktree_gates.hookstart import search_path

if TYPE_CHECKING:
    from pytest_worktree_gates.gates.model import CheckFacts
    from pytest_worktree_gates.hookstart import Child, Started
    from pytest_worktree_gates.preload import Forked

OUTPUT_TAIL = 40  # lines of a failing check's output kept for the report


# A parser turns a tool's stdout into its findings, one readable line each, or None when the
# output is not what the tool promised (a crash): then the exit code decides.
Findings = Callable[[str], "list[str] | None"]


def _json_objects(output: str) -> list[dict[str, Any]] | None:
    """The objects of a JSON list (ruff's output), or None when the output is no such list."""
    try:
        data = json.loads(output)
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    return [item for item in data if isinstance(item, dict)]


def _ruff_json(output: str) -> list[str] | None:
    items = _json_objects(output)
    if items is None:
        return None
    return [
        f"{item.get('filename')}:{item.get('location', {}).get('row')}: "
        f"{item.get('code')} {item.get('message')}"
        for item in items
    ]


def _mypy_errors(output: str) -> list[dict[str, Any]]:
    """The error messages of ``mypy -O json``: one JSON object a line, other lines skipped."""
    errors = []
    for line in output.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("severity") == "error":
            errors.append(message)
    return errors


def _mypy_json(output: str) -> list[str] | None:
    findings = []
    for message in _mypy_errors(output):
        code = f"  [{message['code']}]" if message.get("code") else ""
        where = f"{message.get('file')}:{message.get('line')}"
        findings.append(f"{where}: {message.get('message')}{code}")
    return findings


def _lines_starting(prefix: str) -> Findings:
    def findings(output: str) -> list[str] | None:
        return [line for line in output.splitlines() if line.lower().startswith(prefix)]

    return findings


def _reformat(output: str) -> list[str] | None:
    """ruff format --check and black --check: one finding per file they would reformat."""
    named = [
        line
        for line in output.splitlines()
        if line.lower().startswith("would reformat") or line.lstrip().startswith("--> ")
    ]
    if match := re.search(r"(\d+) files? would be reformatted", output):
        count = int(match.group(1))
        return named[:count] + ["would reformat"] * (count - len(named))
    return named


def _ruff_paths(output: str) -> set[str] | None:
    items = _json_objects(output)
    return None if items is None else {str(item.get("filename")) for item in items}


def _mypy_paths(output: str) -> set[str] | None:
    return {str(message.get("file")) for message in _mypy_errors(output)}


@dataclass(frozen=True)
class Tool:
    """How to ask one known tool for a check-only, machine-readable run."""

    check_only: tuple[str, ...]  # always added, last, so they beat a --fix in the command
    machine: tuple[str, ...]  # machine-readable output, unless the command chose a format
    findings: Findings
    chosen_format: tuple[str, ...] = ()  # flag prefixes by which the user picks the format
    # Which files have findings, so a hook can cache the files that passed; None: unknown.
    paths: Callable[[str], set[str] | None] | None = None


TOOLS: dict[tuple[str, ...], Tool] = {
    ("ruff", "check"): Tool(
        ("--no-fix",), ("--output-format=json",), _ruff_json, ("--output",), _ruff_paths
    ),
    ("ruff", "format"): Tool(("--check",), (), _reformat),
    ("mypy",): Tool((), ("-O", "json"), _mypy_json, ("-O", "--output"), _mypy_paths),
    ("black",): Tool(("--check",), (), _reformat),
    ("isort",): Tool(("--check-only",), (), _lines_starting("error:")),
}


def _tool(argv: Sequence[str]) -> Tool | None:
    name = Path(argv[0]).name
    return TOOLS.get((name, argv[1]) if len(argv) > 1 else (name,)) or TOOLS.get((name,))


def _chose_format(tool: Tool, argv: Sequence[str]) -> bool:
    return bool(tool.chosen_format) and any(arg.startswith(tool.chosen_format) for arg in argv)


def expand(check: Check, files: Sequence[str]) -> list[str]:
    """The check's command with ``{files}`` filled in, one argument per file.

    A file named like an option (``-x.py``) is passed as ``./-x.py`` so no tool reads it as one.
    """
    safe = [f"./{name}" if name.startswith("-") else name for name in files]
    argv: list[str] = []
    for word in shlex.split(check.run):
        if word == "{files}":
            argv.extend(safe)
        else:  # format-string rules, so {{ and }} stand for literal braces
            parsed = string.Formatter().parse(word)
            joined = " ".join(safe)
            argv.append("".join(text + (joined if field else "") for text, field, _, _ in parsed))
    return argv


def command(check: Check, files: Sequence[str]) -> list[str]:
    """The argv of a check-only run of ``check`` on ``files``."""
    argv = expand(check, files)
    tool = _tool(argv)
    if tool is not None:
        argv.extend(tool.check_only)
        if not _chose_format(tool, argv):
            argv.extend(tool.machine)
    return argv


def hook_command(check: Check, files: Sequence[str]) -> list[str]:
    """The argv of a hook run: a fixer fixes (no check-only flags), the others run as in a gate.

    A gate must never rewrite files, but a pre-commit hook exists to: formatters get the plain
    command, and the hook restages what they changed.
    """
    return expand(check, files) if check.fixes else command(check, files)


def parser_for(check: Check) -> Tool | None:
    """The tool whose output we can read; a format the user chose leaves it to the exit code."""
    words = shlex.split(check.run)
    tool = _tool(words)
    return None if tool is None or _chose_format(tool, words) else tool


def require_tool(check: Check) -> str:
    """The absolute path of the check's program, or one error naming it and the install."""
    program = shlex.split(check.run)[0]
    found = shutil.which(program, path=search_path())
    if found is None:
        raise GatesError(
            f"check {check.name!r}: command {program!r} not found; install it "
            f"(for example `pip install {program}`) or change "
            f"[tool.worktree-gates.checks.{check.name}] run"
        )
    return found


def project_files(root: Path, globs: Sequence[str]) -> list[str]:
    """The files a gate checks: tracked ones in a repo, else every matching file."""
    if git.find_repo(root) is not None:
        # A tracked file deleted from the work tree is no file to check.
        tracked = git.tracked_files(root, globs)
        return [name for name in tracked if matches(name, globs) and (root / name).exists()]
    skip = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox"}
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not skip & set(relative.parts):
            name = relative.as_posix()
            if matches(name, globs):
                found.append(name)
    return found


class RunningCheck:
    """A check started in the background; ``finish`` waits and counts its errors."""

    def __init__(
        self,
        check: Check,
        root: Path,
        files: Sequence[str],
        argv: list[str] | None = None,
        started: Started | None = None,
        preload: bool = False,
    ) -> None:
        """``started``: the same command, already started by the hook's early start.

        ``preload``: a hook's run, which may go to the tool's preload server (a gate's never
        does: it judges a change, so its tools run exactly as configured, as plain processes).
        """
        self.check = check
        self.root = root
        self.files = len(files)
        self.argv = command(check, files) if argv is None else argv
        self.display = check.run.replace("{files}", f"<{len(files)} files>")
        self._process: subprocess.Popen[bytes] | Child | Forked | None = None
        self._output: IO[bytes]
        self._errors: IO[bytes]
        self.failed_paths: set[str] | None = None  # files with findings, relative; None: unknown
        if started is not None:
            self._output, self._errors = started.output, started.errors
            self._process = started.process
            return
        import tempfile  # not at the top: a git hook answered from the cache never needs it

        # Files, not pipes: a chatty tool must never block on a full pipe we read only later.
        self._output = tempfile.TemporaryFile()  # noqa: SIM115
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        # A command without {files} checks the project itself and always runs.
        if files or "{files}" not in check.run:
            env = git.clean_env()
            env["PATH"] = search_path()
            if preload:
                self._process = _preloaded(check, self.argv, root, env, self._output, self._errors)
            if self._process is None:
                self._process = subprocess.Popen(
                    self.argv, cwd=root, stdout=self._output, stderr=self._errors, env=env
                )

    def finish(self) -> CheckFacts:
        from pytest_worktree_gates.gates.model import CheckFacts

        if self._process is None:  # nothing to check is not a failure
            return CheckFacts(self.check.name, self.display, 0, 0, "", 0, ran=False)
        returncode = self._process.wait()
        output, diagnostics = (self._read(stream) for stream in (self._output, self._errors))
        tool = parser_for(self.check)
        # Parsed from stdout alone: warnings on stderr must not break the JSON parse.
        findings = tool.findings(output) if tool else None
        if not findings:
            # No parsed finding: a failing exit is one error (a crash, a bad flag, a tool we
            # cannot parse), shown with what the tool printed.
            text = (output + "\n" + diagnostics).strip()
            findings = text.splitlines()[-OUTPUT_TAIL:] or ["(no output)"] if returncode else []
            errors = int(returncode != 0)
        else:
            errors = len(findings)
        # Tools that print absolute paths are shown relative to the project, like the others.
        prefix = f"{self.root}{os.sep}"
        paths = tool.paths(output) if tool and tool.paths and returncode in (0, 1) else None
        if paths is not None:
            self.failed_paths = {p.removeprefix(prefix).removeprefix("./") for p in paths}
        tail = "\n".join(line.replace(prefix, "") for line in findings[:OUTPUT_TAIL])
        return CheckFacts(self.check.name, self.display, returncode, errors, tail, self.files)

    @staticmethod
    def _read(stream: IO[bytes]) -> str:
        stream.seek(0)
        text = stream.read().decode(errors="replace")
        stream.close()
        return text

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._output.close()
        self._errors.close()


def _preloaded(
    check: Check, argv: Sequence[str], root: Path, env: dict[str, str], output: IO[bytes],
    errors: IO[bytes],
) -> Forked | None:  # fmt: skip
    """The run in the tool's preload server, or None to start it plainly."""
    from pytest_worktree_gates import preload

    program = shutil.which(argv[0], path=env["PATH"])
    if program is None:
        return None  # Popen raises the error that names the program
    try:
        return preload.run(program, argv, str(root), env, output.fileno(), errors.fileno())
    except preload.PreloadError as error:
        raise GatesError(f"check {check.name!r}: {error}") from None


def start(checks: Sequence[Check], root: Path) -> list[RunningCheck]:
    """Start every check at once; tools are looked up first so a missing one fails fast."""
    for check in checks:
        require_tool(check)
    return [RunningCheck(check, root, project_files(root, check.files)) for check in checks]
