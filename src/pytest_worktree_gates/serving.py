"""Serve the app for a gate: lease its port, start it, wait until it is healthy, stop it.

The app's port is leased for (worktree, ``app``) exactly like a database's, from the same
``port-range``. The command runs with the process's environment, in which the databases' env
is already exported, so the served app uses the worktree's own databases.

The gate starts the app in a process group of its own (a new session): Ctrl-C in the terminal
reaches pytest, not the app, and stopping the app signals the whole group, so a server that
forks workers or runs under a shell leaves nothing behind.
"""

from __future__ import annotations

import http.client
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates import git, state
from pytest_worktree_gates.appfixture import URL_VARIABLE
from pytest_worktree_gates.config import Config, Gate, ServeConfig
from pytest_worktree_gates.databases import ports
from pytest_worktree_gates.databases.filelock import FileLock
from pytest_worktree_gates.databases.localproc import die_with_parent
from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.gates.model import ServeFacts
from pytest_worktree_gates.hookstart import search_path

APP = "app"  # the lease's engine name
GRACE = 5.0  # seconds between SIGTERM and SIGKILL when stopping the app
TAIL = 20  # lines of the app's output shown when it fails to start
FIRST_POLL, LAST_POLL = 0.005, 0.04  # health polling backs off from 5 ms to 40 ms


def serve_of(gate: Gate) -> ServeConfig:
    if gate.serve is None:
        raise GatesError(
            f"gate {gate.name!r} serves no app; add [tool.worktree-gates.gates.{gate.name}.serve] "
            'with command = "... {port}" to pyproject.toml'
        )
    return gate.serve


def url_of(port: int) -> str:
    return f"http://{ports.HOST}:{port}"


def log_path(repo: git.Repo, port: int) -> Path:
    """The app's output, per port: two runs of one worktree never share a file."""
    return repo.git_dir / "worktree-gates" / f"app-{port}.log"


def render(serve: ServeConfig, port: int) -> tuple[list[str], dict[str, str]]:
    """The command's words and the extra env, with ``{port}`` filled in."""
    words = [word.format(port=port) for word in shlex.split(serve.command)]
    return words, {name: value.format(port=port) for name, value in serve.env}


def find_program(word: str, root: Path) -> str | None:
    """The program a command's first word names, as the app started in ``root`` runs it.

    A path (``./serve.sh``, ``bin/app``) is relative to the project root, where the app starts,
    not to wherever pytest was run from; a bare name is looked up on PATH.
    """
    if os.sep in word and not os.path.isabs(word):
        word = str(root / word)
    return shutil.which(word, path=search_path())


def require_program(gate: Gate, root: Path) -> str:
    """The absolute path of the serve command's program, or one error naming it."""
    program = shlex.split(serve_of(gate).command)[0]
    found = find_program(program, root)
    if found is None:
        raise GatesError(
            f"serve command {program!r} not found; install it or change "
            f"[tool.worktree-gates.gates.{gate.name}.serve] command"
        )
    return found


@dataclass
class Reservation:
    """The app's port, held under the worktree's app lock until the app listens on it.

    The lease checks the port with a real bind, but until the app has bound it another run of
    the same worktree would see it free and get the same lease; the lock closes that window.
    """

    repo: git.Repo
    port: int
    lock: FileLock

    @property
    def url(self) -> str:
        return url_of(self.port)

    def release(self) -> None:
        self.lock.__exit__(None, None, None)


def reserve(config: Config, repo: git.Repo) -> Reservation:
    lock = FileLock(repo.git_dir / "worktree-gates" / "app.lock").__enter__()
    try:
        with state.connect(repo.state_dir) as db:
            # must_bind: the app is about to start, so a port someone took moves the lease.
            port = ports.lease(db, str(repo.git_dir), APP, config.databases.ports, must_bind=True)
    except BaseException:
        lock.__exit__(None, None, None)
        raise
    return Reservation(repo, port, lock)


@dataclass
class Running:
    """A started app: its leader process, what it was started as, and where its output goes."""

    process: subprocess.Popen[bytes]
    command: str
    port: int
    log: Path
    started: float
    own_group: bool = True

    @property
    def url(self) -> str:
        return url_of(self.port)

    def tail(self, lines: int = TAIL) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


def start(serve: ServeConfig, reservation: Reservation, root: Path, *, own_group: bool) -> Running:
    """Start the command on the reserved port, its output to the log file.

    ``own_group`` puts it in a new session (the gate); the foreground ``serve`` verb keeps it in
    the terminal's group so that Ctrl-C and the terminal reach it as if typed by hand.
    """
    words, extra = render(serve, reservation.port)
    program = find_program(words[0], root) or words[0]
    env = {**git.clean_env(), **extra, "PATH": search_path(), URL_VARIABLE: reservation.url}
    log = log_path(reservation.repo, reservation.port)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [program, *words[1:]],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL if own_group else None,
            stdout=out if own_group else None,
            stderr=subprocess.STDOUT if own_group else None,
            start_new_session=own_group,
            # A kill -9 of the gate takes the app's leader with it.
            preexec_fn=die_with_parent,
        )
    return Running(process, shlex.join(words), reservation.port, log, started, own_group)


def answers(port: int, path: str, timeout: float) -> bool:
    """One GET of ``path`` on the app's port: True on a 2xx; refused, reset, slow or any other
    status is False.
    """
    connection = http.client.HTTPConnection(ports.HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        return 200 <= connection.getresponse().status < 300
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def wait_healthy(running: Running, serve: ServeConfig) -> ServeFacts:
    """Poll the health path with backoff until a 2xx, an early exit, or the timeout."""
    deadline = running.started + serve.timeout
    delay = FIRST_POLL
    while True:
        code = running.process.poll()
        if code is not None:
            how = f"code {code}" if code >= 0 else f"signal {-code}"
            return failed(running, serve, f"exited with {how} before {serve.health} answered")
        left = deadline - time.monotonic()
        if answers(running.port, serve.health, max(0.05, min(left, 2.0))):
            return ServeFacts(
                running.command, running.url, serve.timeout, time.monotonic() - running.started
            )
        left = deadline - time.monotonic()
        if left <= 0:
            return failed(running, serve, f"no 2xx on {serve.health} within {serve.timeout:g} s")
        time.sleep(min(delay, left))
        delay = min(delay * 2, LAST_POLL)


def failed(running: Running, serve: ServeConfig, error: str) -> ServeFacts:
    return ServeFacts(running.command, running.url, serve.timeout, None, error, running.tail())


def group_members(group: int) -> list[int]:
    """The live (not zombie) processes of a process group, read from /proc."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - not Linux: ask the kernel for the group instead
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [group]
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def _signal(running: Running, number: int) -> None:
    try:
        if running.own_group:
            os.killpg(running.process.pid, number)
        elif running.process.poll() is None:
            running.process.send_signal(number)
    except (ProcessLookupError, PermissionError):
        pass


def _gone(running: Running, within: float) -> bool:
    deadline = time.monotonic() + within
    while True:
        # Reap the leader first: until then it counts as a member, as a zombie.
        leader_gone = running.process.poll() is not None
        # A new session's leader has the group's id: its pid.
        if leader_gone and not (running.own_group and group_members(running.process.pid)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def stop(running: Running, grace: float = GRACE) -> None:
    """SIGTERM to the whole group; SIGKILL to what is left after ``grace`` seconds."""
    _signal(running, signal.SIGTERM)
    if not _gone(running, grace):
        _signal(running, signal.SIGKILL)
        _gone(running, grace)
