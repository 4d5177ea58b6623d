"""The commit hook's first milliseconds: start the checks before loading the rest of the package.

A commit waits for its slowest check (mypy takes over 100 ms on a single file), so whatever the
hook does before starting that check adds to every commit. This module is that part, for the
usual case: nothing unstaged, and a plan that an earlier run saved. It imports only cheap
standard modules (no subprocess, dataclasses, tomllib or config model), reads the index with
one git call, and looks the result cache up. Then it answers from the cache alone, or starts
the checks (the first fixer together with the others, as hookrun does). When they all pass and
the fixer wrote no file, it records the passes and prints the report itself. Anything else (a
failure, a fix, output to read) goes to the full runner (hookrun), which plans the run again
from the real config and adopts a started check only if it would have started exactly that
command.

Anything unusual (unstaged changes, a saved patch to put back, no plan yet, a changed config
or tool, git variables pointing elsewhere) returns None, and the full runner does everything.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal's numbers, without its enums
import marshal
import os
import sys
import time

# typing, collections.abc, subprocess and fnmatch (with re) cost imports on the path this
# module keeps short: annotations only, processes by os.posix_spawn, globs matched here.
# sqlite3 (with datetime and collections) is imported while git works: see prestart.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Mapping, Sequence
    from typing import IO, Any

    from pytest_worktree_gates.config import Check
    from pytest_worktree_gates.preload import Forked

# Variables a git hook exports that would redirect a child git to another repo or index.
REPO_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_QUARANTINE_PATH",
)
INDEX_VARIABLES = ("GIT_INDEX_FILE",)
# Set by git for every hook and harmless: they say nothing about which repo to read.
HOOK_VARIABLES = ("GIT_INDEX_FILE", "GIT_PREFIX")
# In a linked worktree git also sets GIT_DIR for a hook: harmless when it names the git dir
# that the work tree's .git file names.
LINKED_HOOK_VARIABLES = (*HOOK_VARIABLES, "GIT_DIR")

# Files whose content changes what a formatter, linter or type checker reports.
TOOL_CONFIGS = (
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "ruff.toml",
    ".ruff.toml",
    "mypy.ini",
    ".mypy.ini",
    ".isort.cfg",
    ".flake8",
)

REGULAR_FILES = (b"100644", b"100755")  # not symlinks (120000) or submodules (160000)
# One git call for the staged blobs and the unstaged paths (index vs HEAD, work tree vs index).
STATUS = (
    "status", "--porcelain=v2", "-z", "--untracked-files=no", "--no-renames",
    "--ignore-submodules",
)  # fmt: skip
FILES = "\0files\0"  # stands for the file list in a saved command; no real argument has a NUL
PLAN_NAME = "hook-plan.marshal"
PATCH_NAME = "unstaged.patch"  # unstaged work set aside by a run (staging.patch_path)
STATE_DIR = "worktree-gates"


def clean_env(keep: Iterable[str] = (), base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process, without git's repo variables unless kept."""
    env = dict(os.environ if base is None else base)
    for name in REPO_VARIABLES:
        if name not in keep:
            env.pop(name, None)
    return env


def search_path() -> str:
    """PATH with this interpreter's scripts dir first: a venv's tools work unactivated."""
    return os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


def absolute_index_env() -> None:
    """Make an inherited relative ``GIT_INDEX_FILE`` absolute, before any cwd can change."""
    index = os.environ.get("GIT_INDEX_FILE")
    if index and not os.path.isabs(index):
        os.environ["GIT_INDEX_FILE"] = os.path.abspath(index)


def parse_status(out: bytes) -> tuple[list[tuple[str, str]], set[str]]:
    """Pure: from ``git status --porcelain=v2 -z``, the staged files and the unstaged paths.

    Staged files are the regular files added or modified in the index (deleted ones are nothing
    to check), each with the blob id of its staged content; unstaged paths are tracked files
    whose work tree differs from the index (and unmerged ones).
    """
    staged: list[tuple[str, str]] = []
    unstaged: set[str] = set()
    fields = iter(out.split(b"\0"))
    for entry in fields:
        kind = entry[:2]
        if kind == b"1 ":  # 1 XY sub mH mI mW hH hI path
            _, xy, _, _, mode, _, _, blob, raw = entry.split(b" ", 8)
        elif kind == b"2 ":  # 2 XY sub mH mI mW hH hI score path NUL orig
            _, xy, _, _, mode, _, _, blob, _, raw = entry.split(b" ", 9)
            next(fields, None)
        elif kind == b"u ":  # an unmerged path: never a clean work tree
            unstaged.add(entry.split(b" ", 10)[10].decode("utf-8", "surrogateescape"))
            continue
        else:
            continue
        path = raw.decode("utf-8", "surrogateescape")
        if xy[:1] in (b"A", b"M", b"C") and mode in REGULAR_FILES:
            staged.append((path, blob.decode()))
        if xy[1:] != b".":
            unstaged.add(path)
    return staged, unstaged


def matches(name: str, globs: Sequence[str]) -> bool:
    """Does a repo-relative path match a check's globs (anywhere in the tree)?"""
    base = name.rsplit("/", 1)[-1]
    return any(_glob(name, glob) or _glob(base, glob) for glob in globs)


def _glob(name: str, glob: str) -> bool:
    """``fnmatch.fnmatchcase``; a glob whose only wildcard is ``*`` is matched without re."""
    if "?" in glob or "[" in glob:
        from fnmatch import fnmatchcase

        return fnmatchcase(name, glob)
    if "*" not in glob:
        return name == glob
    first, *middle, last = glob.split("*")
    start, end = len(first), len(name) - len(last)
    if end < start or not name.startswith(first) or not name.endswith(last):
        return False
    for part in middle:  # each in order, as early as it can be: a later one has more room
        found = name.find(part, start, end)
        if found < 0:
            return False
        start = found + len(part)
    return True


def passed(
    connection: sqlite3.Connection, check: str, setup: str, subjects: Iterable[str]
) -> set[str]:
    """Which of ``subjects`` already passed this check under this setup."""
    wanted = sorted(set(subjects))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):  # SQLite's limit on bound parameters
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = connection.execute(
            f"SELECT subject FROM hook_passes WHERE check_name = ? AND setup = ?"
            f" AND subject IN ({marks})",
            (check, setup, *chunk),
        )
        found.update(row[0] for row in rows)
    return found


def remember(
    connection: sqlite3.Connection, check: str, setup: str, subjects: Sequence[str]
) -> None:
    """Record passes, in one transaction."""
    if not subjects:
        return
    now = time.time()
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.executemany(
            "INSERT OR REPLACE INTO hook_passes (check_name, setup, subject, recorded_at)"
            " VALUES (?, ?, ?, ?)",
            [(check, setup, subject, now) for subject in subjects],
        )
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def shown_files(paths: Sequence[str], limit: int = 8) -> str:
    """How a report names files: a count, and the first few (quoted when odd)."""
    shown = ", ".join(repr(p) if any(c in p for c in "\n\t ,") else p for p in paths[:limit])
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return f"{len(paths)} file{'s' * (len(paths) != 1)} ({shown}{more})" if paths else "0 files"


def fill(template: Sequence[str], paths: Sequence[str]) -> list[str]:
    """A saved command with the files in place of :data:`FILES`, as ``checkrun.expand`` does."""
    safe = [f"./{name}" if name.startswith("-") else name for name in paths]
    argv: list[str] = []
    for word in template:
        if word == FILES:
            argv.extend(safe)
        else:
            argv.append(word.replace(FILES, " ".join(safe)))
    return argv


# The saved plan ---------------------------------------------------------------------------
#
# What the full runner learnt about the pre-commit checks, so that the next commit need not
# parse the config or ask the tools their version: per check its name, whether it fixes files,
# its globs, whether its cache subject is the whole tree, its setup digest, its command with
# FILES for the files, its program with that file's identity, whether its output is read for
# findings, and whether it may run in a preload server (see preload.py). The plan is valid
# while the package, the interpreter, PATH, the config files and the programs are the same.

Stamp = tuple[int, int, int, int] | None


def file_stamp(path: str) -> Stamp:
    """A file's identity: size, mtime, ctime and inode (None when missing).

    Any write changes the ctime, which no tool can set back.
    """
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


def plan_key(root: str) -> tuple[object, ...]:
    """Everything besides the programs that a saved plan depends on."""
    from pytest_worktree_gates import __version__

    configs = tuple(file_stamp(os.path.join(root, name)) for name in TOOL_CONFIGS)
    return (__version__, sys.executable, search_path(), configs)


PlannedCheck = tuple[str, bool, tuple[str, ...], bool, str, tuple[str, ...], str, Stamp, bool, bool]
PLANNED_FIELDS = 10  # a plan saved by another release may hold other fields: not used


def planned(
    check: Check,
    whole_tree: bool,
    setup: str,
    template: Sequence[str],
    program: str,
    parsed: bool,
) -> PlannedCheck:
    """One check of a plan, as :func:`save_plan` stores it.

    ``parsed``: the runner reads the check's output for findings (so a pass with output is
    left to it); otherwise the exit code alone decides.
    """
    stamp = file_stamp(program)
    return (check.name, check.fixes, tuple(check.files), whole_tree, setup, tuple(template),
            program, stamp, parsed, check.preload)  # fmt: skip


def save_plan(folder: str, key: tuple[object, ...], checks: Sequence[PlannedCheck]) -> None:
    """Write the plan unless the same one is there (atomically: another commit may read it)."""
    plan: Any = (key, tuple(checks))  # only str, int, bool, None and tuples: marshal's types
    data = marshal.dumps(plan)
    path = os.path.join(folder, PLAN_NAME)
    try:
        with open(path, "rb") as handle:
            if handle.read() == data:
                return
    except OSError:
        pass
    os.makedirs(folder, exist_ok=True)
    scratch = f"{path}.{os.getpid()}"
    with open(scratch, "wb") as handle:
        handle.write(data)
    os.replace(scratch, path)


def load_plan(folder: str, root: str) -> tuple[PlannedCheck, ...] | None:
    """The plan saved in ``folder`` (a git dir's), if it is still valid for this root."""
    try:
        with open(os.path.join(folder, PLAN_NAME), "rb") as handle:
            key, checks = marshal.loads(handle.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if key != plan_key(root) or any(len(check) != PLANNED_FIELDS for check in checks):
        return None
    if any(file_stamp(check[6]) != check[7] for check in checks):
        return None  # a tool was upgraded or replaced
    return tuple(checks)


# The early start ----------------------------------------------------------------------------


class Child:
    """A process started with ``os.posix_spawn``: the part of ``Popen`` the runner uses."""

    __slots__ = ("pid", "returncode")

    # subprocess resets what Python ignores (SIGPIPE, SIGXFSZ) for its children; so do we.
    RESET = tuple(
        getattr(_signal, name)
        for name in ("SIGPIPE", "SIGXFSZ", "SIGXFZ")
        if hasattr(_signal, name)
    )

    def __init__(
        self, program: str, argv: Sequence[str], env: Mapping[str, str],
        stdout: int, stderr: int, search: bool = False,
    ) -> None:  # fmt: skip
        """Start ``argv`` in this process's directory, with stdout and stderr on these fds."""
        spawn = os.posix_spawnp if search else os.posix_spawn
        actions = [(os.POSIX_SPAWN_DUP2, stdout, 1), (os.POSIX_SPAWN_DUP2, stderr, 2)]
        self.pid = spawn(program, list(argv), env, file_actions=actions, setsigdef=self.RESET)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, _signal.SIGKILL)


class Started:
    """A check started here, for the full runner to adopt, or else to stop."""

    __slots__ = ("argv", "errors", "fixes", "output", "process")

    def __init__(
        self, argv: list[str], fixes: bool, process: Child | Forked, output: IO[bytes],
        errors: IO[bytes],
    ) -> None:  # fmt: skip
        self.argv = argv
        self.fixes = fixes
        self.process = process
        self.output = output
        self.errors = errors

    def stop(self) -> None:
        """Kill a check; but let a fixer finish: killed mid-write, it could truncate a file."""
        if self.process.poll() is None:
            if not self.fixes:
                self.process.kill()
            self.process.wait()
        self.output.close()
        self.errors.close()


class Prestart:
    """What the early start learnt and began, handed to the full runner."""

    __slots__ = ("common_dir", "git_dir", "root", "staged", "stamps", "started", "tree")

    def __init__(
        self, root: str, git_dir: str, common_dir: str, staged: list[tuple[str, str]],
        tree: str | None,
    ) -> None:  # fmt: skip
        self.root = root
        self.git_dir = git_dir
        self.common_dir = common_dir
        self.staged = staged  # (path, blob) of each staged file; nothing was unstaged
        self.tree = tree  # the staged tree, when a check is cached by it
        # Each staged file's identity before anything started: if a fixer writes one, what
        # the checks that started with it read is void.
        self.stamps = {path: file_stamp(os.path.join(root, path)) for path, _ in staged}
        self.started: dict[str, Started] = {}

    def stop(self) -> None:
        """Stop whatever the full runner did not adopt."""
        for item in self.started.values():
            item.stop()
        self.started.clear()


class _Git:
    """``git ARGS`` started now, its output read later (stderr dropped)."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.reader, writer = os.pipe()
        try:
            with open(os.devnull, "wb") as null:
                argv = ["git", "-c", "core.quotePath=false", *args]
                self.child = Child("git", argv, env, writer, null.fileno(), search=True)
        except BaseException:
            os.close(self.reader)
            raise
        finally:
            os.close(writer)

    def output(self) -> bytes | None:
        """All of stdout, or None if git failed."""
        chunks = []
        try:
            while chunk := os.read(self.reader, 65536):
                chunks.append(chunk)
        finally:
            os.close(self.reader)
            self.reader = -1
        return b"".join(chunks) if self.child.wait() == 0 else None

    def stop(self) -> None:
        if self.reader >= 0:
            os.close(self.reader)
            self.reader = -1
        self.child.kill()
        self.child.wait()


def git_dirs(root: str) -> tuple[str, str] | None:
    """This worktree's git dir and the common dir, read from ``.git`` without starting git.

    A guess, taken to read the plan while git starts: git's own answer is checked after.
    """
    dot_git = os.path.join(root, ".git")
    if os.path.isdir(dot_git):
        git_dir = dot_git
    else:  # a linked worktree: "gitdir: PATH"
        try:
            with open(dot_git, encoding="utf-8") as handle:
                line = handle.readline().strip()
        except (OSError, UnicodeDecodeError):
            return None
        if not line.startswith("gitdir: "):
            return None
        git_dir = os.path.join(root, line[len("gitdir: ") :])
    try:
        with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as handle:
            common_dir = os.path.join(git_dir, handle.read().strip())
    except FileNotFoundError:
        common_dir = git_dir
    except (OSError, UnicodeDecodeError):
        return None
    return os.path.realpath(git_dir), os.path.realpath(common_dir)


def index_tree(index: str, size: int) -> str | None:
    """Pure apart from reading the file: the staged tree's id, from the index's cache tree.

    ``git commit`` brings the cache tree (the ``TREE`` extension) up to date before it runs the
    hook, so the root's entry is the id ``git write-tree`` would print, without starting git.
    None when it is not recorded or not valid, or the index is not a plain version 2 or 3 one
    (``size``: the object id's length in bytes, 20 for SHA-1, 32 for SHA-256).
    """
    try:
        with open(index, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if data[:4] != b"DIRC" or int.from_bytes(data[4:8], "big") not in (2, 3):
        return None  # version 4 compresses paths: left to git
    count = int.from_bytes(data[8:12], "big")
    end = len(data) - size  # the file's checksum follows the extensions
    fixed = 40 + size + 2  # stat fields, object id, flags
    at = 12
    for _ in range(count):  # each entry: fixed part, [extended flags], path, 1 to 8 NULs
        flags = int.from_bytes(data[at + fixed - 2 : at + fixed], "big")
        path_at = at + fixed + (2 if flags & 0x4000 else 0)
        length = flags & 0xFFF
        if length == 0xFFF:  # a path of 4095 bytes or more
            length = data.find(b"\0", path_at) - path_at
        at += (path_at - at + length + 8) & ~7
    while at + 8 <= end:  # extensions: signature, size, data
        signature, length = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "big")
        body = data[at + 8 : at + 8 + length]
        if signature in (b"link", b"sdir"):
            return None  # a split or sparse index: the entries above are not all of it
        if signature == b"TREE":  # the root first: "" NUL "entries subtrees" LF id
            counts, _, rest = body[1:].partition(b"\n")
            if body[:1] != b"\0" or counts.split(b" ")[0] == b"-1" or len(rest) < size:
                return None  # the root is not valid: the index changed since it was computed
            return rest[:size].hex()
        at += 8 + length
    return None


def index_of_git_dir(git_dir: str) -> str | None:
    """The index git named for this hook, if it lies in ``git_dir``: git's own word for it.

    git runs a hook with ``GIT_INDEX_FILE`` set to the index being committed (``index``, or
    ``index.lock`` and the like for ``git commit -a`` or ``git commit PATH``), in the git dir
    and from the top of the work tree: if that is the git dir read from ``.git``, the layout
    is confirmed without asking ``git rev-parse``.
    """
    index = os.environ.get("GIT_INDEX_FILE")
    if not index:
        return None
    index = os.path.realpath(index)
    return index if os.path.dirname(index) == git_dir else None


def prestart(out: IO[str]) -> int | Prestart | None:
    """Answer a ``git commit`` from the cache, or start its checks.

    Returns the exit code when the cache answered (every check already passed), what was
    learnt and started for the full runner, or None to leave everything to it.
    """
    if any(name in os.environ for name in REPO_VARIABLES if name not in LINKED_HOOK_VARIABLES):
        return None
    if not hasattr(os, "posix_spawn"):
        return None  # Windows: the full runner starts the checks
    root = os.getcwd()  # git runs a hook at the top of the work tree
    dirs = git_dirs(root)
    if dirs is None:
        return None
    git_dir, common_dir = dirs
    if "GIT_DIR" in os.environ and os.path.realpath(os.environ["GIT_DIR"]) != git_dir:
        return None  # a git dir other than this work tree's
    plan = load_plan(os.path.join(git_dir, STATE_DIR), root)
    if plan is None or os.path.exists(os.path.join(git_dir, STATE_DIR, PATCH_NAME)):
        return None  # no plan yet, or an interrupted run left unstaged work to put back
    index = index_of_git_dir(git_dir)
    absolute_index_env()
    env = clean_env(keep=INDEX_VARIABLES)
    whole_tree = any(check[3] for check in plan)
    jobs: dict[str, _Git] = {}
    try:  # at once; no optional locks: `git write-tree` must get the index lock
        jobs["status"] = _Git(["--no-optional-locks", *STATUS, "--branch"], env)
        if index is None:  # run by hand, or by something other than git commit
            jobs["dirs"] = _Git(["rev-parse", "--show-toplevel", "--absolute-git-dir",
                                 "--git-common-dir"], env)  # fmt: skip
            if whole_tree:
                jobs["tree"] = _Git(["write-tree"], env)
        __import__("sqlite3")  # for the cache, while git works
        listed = jobs["status"].output()
        found = jobs["dirs"].output() if "dirs" in jobs else None
        tree = None
        if whole_tree and index is not None and listed is not None:
            size = _id_size(listed)
            tree = index_tree(index, size) if size else None
        if whole_tree and tree is None:
            if "tree" not in jobs:  # the cache tree did not say: ask git
                jobs["tree"] = _Git(["write-tree"], env)
            tree = (jobs["tree"].output() or b"").decode().strip() or None
    except OSError:
        return None  # no git, or no process to be had: the full runner says what is wrong
    finally:
        for job in jobs.values():
            if job.child.returncode is None:
                job.stop()
    if index is None:
        lines = found.decode("utf-8", "surrogateescape").splitlines() if found else []
        if len(lines) != 3 or lines[0] != root:
            return None
        if (os.path.realpath(lines[1]), os.path.realpath(os.path.join(root, lines[2]))) != dirs:
            return None  # not the layout read from .git: leave it to the full runner
    if listed is None or (whole_tree and not tree):
        return None
    staged, unstaged = parse_status(listed)
    if unstaged:
        return None  # it must be set aside before any check reads the work tree
    return _start(Prestart(root, git_dir, common_dir, staged, tree), plan, out)


def _id_size(status: bytes | None) -> int | None:
    """The object id's length in bytes, from ``status --branch``'s ``# branch.oid`` line."""
    head = b"# branch.oid "
    if status is None or not status.startswith(head):
        return None  # an unborn branch says "(initial)": no id to measure
    oid = status[len(head) : status.find(b"\0")]
    return len(oid) // 2 if all(c in b"0123456789abcdef" for c in oid) else None


class Due:
    """A check this commit must run: its plan, the files it runs on, what a pass vouches for."""

    __slots__ = ("cached", "check", "paths", "subjects")

    def __init__(
        self, check: PlannedCheck, paths: list[str], subjects: list[str], cached: int
    ) -> None:
        self.check = check
        self.paths = paths
        self.subjects = subjects
        self.cached = cached  # files of the check that the cache already vouched for


def _start(early: Prestart, plan: Sequence[PlannedCheck], out: IO[str]) -> int | Prestart | None:
    if not early.staged and all(FILES in check[5] for check in plan):
        return 0  # nothing staged that any check looks at: the full runner says nothing either
    database = os.path.join(early.common_dir, STATE_DIR, "state.db")
    if not os.path.exists(database):
        return None
    import sqlite3  # loaded already, while git worked

    connection = sqlite3.connect(database, timeout=30, isolation_level=None)
    try:
        result = _run(early, plan, connection, out)
    except BaseException as error:
        early.stop()
        connection.close()
        if isinstance(error, sqlite3.Error):
            return None  # an old or damaged database: the full runner reports it
        raise
    if result != 0:
        connection.close()
        return result
    # Closing the last connection checkpoints the WAL into the database, with an fsync, while
    # the commit waits. The hook's process ends right after this answer (hookmain.shim_exit),
    # so the connection is left open: its writes are committed, and the next connection (or
    # SQLite's own checkpoint, every thousand pages) carries the WAL on.
    _answering[:] = [connection]  # one at most: an earlier one is closed now
    return 0


_answering: list[sqlite3.Connection] = []


def _run(
    early: Prestart, plan: Sequence[PlannedCheck], connection: sqlite3.Connection, out: IO[str]
) -> int | Prestart | None:
    """Look the staged files up in the cache, start what is due, and finish if all goes well."""
    connection.execute("PRAGMA synchronous=NORMAL")  # a cache: no fsync per commit needed
    due: list[Due] = []
    cached: list[str] = []
    for check in plan:
        name, _, globs, whole_tree, setup, template = check[:6]
        files = [(path, blob) for path, blob in early.staged if matches(path, globs)]
        if not files and FILES in template:
            continue  # the full runner skips it: no files, no tool
        if whole_tree:  # as hookrun.plan: the tree is the subject, every file is checked
            tree = early.tree
            is_due = tree is None or tree not in passed(connection, name, setup, [tree])
            pending = files if is_due and FILES in template else []
            subjects = [tree] if tree else []
        else:
            done = passed(connection, name, setup, [blob for _, blob in files])
            pending = [(path, blob) for path, blob in files if blob not in done]
            is_due = bool(pending)
            subjects = [blob for _, blob in pending]
        if is_due:
            paths = [path for path, _ in pending]
            due.append(Due(check, paths, subjects, len(files) - len(pending)))
        else:
            cached.append(name)
    if not due:
        _report([], cached, out)
        return 0
    fixers = [item for item in due if item.check[1]]
    if any(FILES not in item.check[5] for item in fixers):
        return early  # a fixer of the whole project may rewrite what a check is reading
    # The first fixer, and the checks that fix nothing (see hookrun: they start together).
    # The slowest first (checks of the whole tree, such as mypy): the commit waits for them.
    first = sorted(due, key=lambda item: not item.check[3])
    try:
        _spawn(early, [item for item in first if not item.check[1]] + fixers[:1])
    except (OSError, ValueError):
        return None  # a tool vanished, or a bad preload setting: the full runner reports it
    if len(fixers) > 1 or any(FILES not in item.check[5] for item in due):
        return early
    # Waited for in the order they are likely to end: the fixer, then the quick checks, the
    # whole-tree ones (mypy) last, each pass recorded while the slower ones still run.
    others = sorted((item for item in due if not item.check[1]), key=lambda item: item.check[3])
    if not _complete(early, fixers + others, connection):
        return early
    early.stop()  # all finished: this closes their output files
    _report(fixers + [item for item in due if not item.check[1]], cached, out)
    return 0


def _complete(early: Prestart, due: Sequence[Due], connection: sqlite3.Connection) -> bool:
    """Finish the usual commit here: every check passed and the fixer wrote no file.

    Records each pass as soon as it is known (a pass stands on its own; the full runner
    records it again if it takes over). Returns False when anything else happened (a failure,
    a fix, output to read): the full runner then adopts the checks, finished or not, and
    reports as always.
    """
    import sqlite3  # loaded already

    for item in due:  # the fixer first: a fix voids the others, so the full runner takes over
        name, fixes = item.check[0], item.check[1]
        started = early.started[name]
        if started.process.wait() != 0:
            return False
        if fixes:
            paths = [os.path.join(early.root, path) for path in item.paths]
            if [file_stamp(path) for path in paths] != [early.stamps.get(p) for p in item.paths]:
                return False
        elif item.check[8]:
            started.output.seek(0)
            if started.output.read().strip() not in (b"", b"[]"):
                return False  # a clean run prints nothing, or an empty list: let it be read
        try:
            remember(connection, name, item.check[4], item.subjects)
        except sqlite3.Error:
            return False  # the full runner adopts the checks and records them itself
    return True


def _report(passed: Sequence[Due], cached: Sequence[str], out: IO[str]) -> None:
    """The lines hookrun.render prints for these outcomes, in the same order."""
    for item in passed:
        more = f", {item.cached} cached" if item.cached else ""
        print(f"{item.check[0]}: ok on {shown_files(item.paths)}{more}", file=out)
    for name in cached:
        print(f"{name}: ok (cached)", file=out)


def _spawn(early: Prestart, due: Sequence[Due]) -> None:
    """Start the checks, each writing to two unlinked files in this git dir."""
    scratch = os.path.join(early.git_dir, STATE_DIR)
    os.makedirs(scratch, exist_ok=True)
    env = clean_env()
    env["PATH"] = search_path()
    try:
        for number, item in enumerate(due):
            check = item.check
            argv = fill(check[5], item.paths)
            streams = []
            for part in ("out", "err"):
                path = os.path.join(scratch, f"check-{os.getpid()}-{number}.{part}")
                stream = open(path, "w+b")  # noqa: SIM115 - closed by Started.stop or its adopter
                os.unlink(path)
                streams.append(stream)
            # argv[0] as written; the program as planned; in the work tree's top (our cwd).
            out, err = streams[0].fileno(), streams[1].fileno()
            process: Child | Forked | None = None
            if check[9]:
                from pytest_worktree_gates import preload

                process = preload.run(check[6], argv, early.root, env, out, err)
            if process is None:
                process = Child(check[6], argv, env, out, err)
            early.started[check[0]] = Started(argv, check[1], process, streams[0], streams[1])
    except BaseException:
        early.stop()
        raise
