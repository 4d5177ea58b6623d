"""Python tools kept imported between commits: one small fork server per tool and work tree.

mypy spends well over 100 ms of every run importing itself, most of a commit hook's budget. A
preload server imports a tool's console script once, then forks a fresh copy of itself for
each run. The copy starts with the modules loaded and runs the script as the shell would: the
same argv, environment, working directory and standard streams. Its output and exit code are
those of a plain run; only the import is shared, so it is no daemon with state of its own
(such as ``dmypy``, whose fine-grained mode may differ from a plain run).

A server belongs to one (interpreter, script, work tree, environment): anything that could
change what its import did means another server. It exits after ``WORKTREE_GATES_PRELOAD_IDLE``
seconds (600 by default) without a run, when its work tree is gone, when a file it imported
changed, or on SIGTERM. Runs the server cannot take (none is up yet, Linux is not the system,
it is busy or stale) start the tool as a plain process, and start a server for the next one.

The top of this module is imported by the commit hook's early start: cheap standard modules
only, besides hookstart, which the hook has loaded already.
"""

from __future__ import annotations

import marshal
import os
import sys

from pytest_worktree_gates.hookstart import file_stamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    import socket
    from collections.abc import Mapping, Sequence
    from typing import Any, NoReturn

    from pytest_worktree_gates.hookstart import Stamp

    Key = tuple[Any, ...]  # see server_key

IDLE_VARIABLE = "WORKTREE_GATES_PRELOAD_IDLE"
DEFAULT_IDLE = 600.0
# Set by the shell for each prompt or directory, or by git for each hook (GIT_AUTHOR_DATE and
# the like, new for every commit): they change nothing a tool's import does. A run still gets
# them, exactly as they are.
VOLATILE = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})
VOLATILE_PREFIX = "GIT_"
REPLY_TIMEOUT = 2.0  # seconds for a server to take a run before the tool runs without it
HEADER = 4  # a request starts with its length, big-endian


class PreloadError(ValueError):
    """A setting of the environment that this module cannot use."""


def idle_seconds(env: Mapping[str, str]) -> float:
    """How long a server waits for its next run; 0 turns preloading off."""
    text = env.get(IDLE_VARIABLE, "").strip()
    if not text:
        return DEFAULT_IDLE
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise PreloadError(
            f"{IDLE_VARIABLE}={text!r} is not a number of seconds; set it to how long a preload "
            "server may wait for its next run (600 by default), or 0 to run every tool plainly"
        )
    return seconds


def script_of(program: str) -> tuple[str, str] | None:
    """The console script behind ``program`` and its interpreter, if a server can preload it.

    That is a Python script whose first line names, without options, an interpreter in this
    interpreter's directory (the same virtual environment, so this package imports there).
    """
    if not sys.platform.startswith("linux"):
        return None  # abstract sockets and peer credentials: Linux only
    try:
        with open(program, "rb") as handle:
            first = handle.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    interpreter = first[2:].strip().decode("utf-8", "surrogateescape")
    if " " in interpreter or not os.path.basename(interpreter).startswith("python"):
        return None
    if os.path.dirname(interpreter) != os.path.dirname(sys.executable):
        return None
    return os.path.abspath(program), interpreter


def server_key(script: str, interpreter: str, root: str, env: Mapping[str, str]) -> Key:
    """What one server stands for: a run with a different key must not use it.

    ``interpreter`` is the script's: the server runs on it, so a run sees the same
    ``sys.executable`` as a plain one.
    """
    from pytest_worktree_gates import __version__

    settings = tuple(
        sorted(
            (name, value)
            for name, value in env.items()
            if name not in VOLATILE and not name.startswith(VOLATILE_PREFIX)
        )
    )
    return (__version__, os.getuid(), interpreter, script, file_stamp(script), root, settings)


def address(key: Key) -> bytes:
    """The server's abstract socket name: a digest of its key (the server checks the key)."""
    from binascii import crc32

    data = repr(key).encode("utf-8", "surrogateescape")  # marshal's bytes vary with sharing
    return b"\0worktree-gates-preload-%08x%08x" % (crc32(data), crc32(data, 0x5EED))


class Forked:
    """A run in a fork of a preload server: the part of ``Popen`` the runner uses.

    The server is the run's parent, so it reports the exit code over the connection; closing
    the connection (``kill``, or this process dying) makes the server kill the run.
    """

    __slots__ = ("_connection", "_pending", "pid", "returncode")

    def __init__(self, connection: _socket.socket, pid: int, pending: bytes) -> None:
        self._connection = connection
        self._pending = pending  # what arrived after the "run" line
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read(block=False)
        return self.returncode

    def wait(self) -> int:
        while self.returncode is None:
            self._read(block=True)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            import _socket  # socket's calls, without its enums
            from contextlib import suppress

            with suppress(OSError):  # the server is gone: so is its run
                self._connection.shutdown(_socket.SHUT_WR)

    def _read(self, block: bool) -> None:
        if b"\n" not in self._pending:
            self._connection.setblocking(block)
            try:
                chunk = self._connection.recv(256)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:  # the server died: so did its run, with no word on how
                self._finish(-9)
                return
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        word, _, value = line.partition(b" ")
        if word == b"exit":
            self._finish(int(value))

    def _finish(self, code: int) -> None:
        self.returncode = code
        self._connection.close()


def request(
    key: Key, argv: Sequence[str], root: str, env: Mapping[str, str],
    streams: Sequence[int],
) -> Forked | None:  # fmt: skip
    """Run ``argv`` in the server for ``key``, with these stdin, stdout and stderr; or None.

    None when no server answers at once or it declines the run: the caller runs it plainly.
    """
    import _socket

    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        connection.settimeout(REPLY_TIMEOUT)
        connection.connect(address(key))
        credentials = connection.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        if _uid(credentials) != os.getuid():
            raise OSError("a server of another user holds the name: never send it a run")
        body = marshal.dumps((key, list(argv), root, dict(env)))
        message = len(body).to_bytes(HEADER, "big") + body
        fds = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in streams)
        sent = connection.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        if sent < len(message):
            connection.sendall(message[sent:])
        reply = b""
        while b"\n" not in reply:
            chunk = connection.recv(256)
            if not chunk:
                break
            reply += chunk
    except OSError:  # none listening (ECONNREFUSED), a timeout, a server that went away
        connection.close()
        return None
    line, _, rest = reply.partition(b"\n")
    word, _, value = line.partition(b" ")
    if word != b"run":
        connection.close()
        return None  # declined ("busy", "stale", "other"): the run goes ahead plainly
    return Forked(connection, int(value), rest)


def run(
    program: str, argv: Sequence[str], root: str, env: Mapping[str, str], stdout: int,
    stderr: int,
) -> Forked | None:  # fmt: skip
    """Run a check's command in its tool's preload server; None to run it plainly.

    When the tool could be preloaded but no server took the run, one is started for the next
    run. Raises :class:`PreloadError` for a bad ``WORKTREE_GATES_PRELOAD_IDLE``.
    """
    found = script_of(program) if idle_seconds(env) > 0 else None
    if found is None:
        return None
    script, interpreter = found
    key = server_key(script, interpreter, root, env)
    forked = request(key, argv, root, env, (0, stdout, stderr))
    if forked is None:
        launch(script, interpreter, root, env)
    return forked


def launch(script: str, interpreter: str, root: str, env: Mapping[str, str]) -> None:
    """Start a server for ``script`` in the background, in a session of its own.

    It outlives this process (a commit hook ends at once); a second server for the same key
    finds the name taken and exits.
    """
    from pytest_worktree_gates.hookstart import Child

    argv = [interpreter, "-m", "pytest_worktree_gates.preload", script, root]
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.posix_spawn(
            interpreter,
            argv,
            dict(env),
            file_actions=[(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)],
            setsid=True,
            setsigdef=Child.RESET,
        )
    except OSError:
        pass  # no server this time: the next run tries again
    finally:
        os.close(null)


# The server ---------------------------------------------------------------------------------


def modules_of(script: str) -> list[str]:
    """Pure apart from reading the file: the modules a console script imports at its top."""
    import ast

    with open(script, "rb") as handle:
        tree = ast.parse(handle.read(), script)
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def loaded_files() -> dict[str, Stamp]:
    """Each imported module's file and its stamp: an upgrade changes one of them."""
    paths = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
    return {path: file_stamp(path) for path in paths if isinstance(path, str)}


class Server:
    """Forks a run per request, reports each exit, kills a run whose client went away."""

    def __init__(self, script: str, root: str, idle: float) -> None:
        import selectors
        import socket

        self.script = script
        self.root = root
        self.idle = idle
        self.key = server_key(script, sys.executable, root, os.environ)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Bound now, listening only once the tool is imported: a client meanwhile is refused
        # at once (and runs the tool plainly), and a second server for this key exits here.
        self.listener.bind(address(self.key))
        self.selector = selectors.DefaultSelector()
        self.runs: dict[int, socket.socket] = {}  # pid -> its client's connection
        self.files: dict[str, Stamp] = {}
        self.stopping = False
        self.terminating = False  # SIGTERM came: see _terminate

    def preload(self) -> None:
        """Import what the script imports, as running it would, from its own directory."""
        sys.path[0] = os.path.dirname(os.path.realpath(self.script))
        os.chdir(self.root)
        for name in modules_of(self.script):
            __import__(name)
        import ctypes  # noqa: F401  # used by every run: see _die_with_server
        import runpy  # noqa: F401

        # Not the script, which is no module: its stamp is in the key, so a run of a changed
        # script asks another server.
        self.files = loaded_files()

    def serve(self) -> None:
        import selectors
        import signal
        from time import monotonic

        # Each signal writes a byte to the pipe whenever it lands, so select wakes for it,
        # even for one that came between two select calls.
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._terminate)
        self.listener.listen(16)
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.selector.register(wake_read, selectors.EVENT_READ)
        last = monotonic()
        while not (self.stopping and not self.runs):
            events = self.selector.select(timeout=min(self.idle, 5.0))
            for selected, _ in events:
                if selected.fileobj is self.listener:
                    self._accept()
                elif selected.fileobj == wake_read:
                    os.read(wake_read, 512)
                    self._reap()
                else:
                    self._client_spoke(selected.fileobj)  # type: ignore[arg-type]
            if self.terminating:
                self._stop()
            elif self.runs or any(s.fileobj is self.listener for s, _ in events):
                last = monotonic()
            elif monotonic() - last >= self.idle or not os.path.isdir(self.root):
                self._stop()

    def _terminate(self, *_: object) -> None:
        # Only a flag: closing the listener here could pull it from under an accept() that
        # select has just cleared. The loop stops between its own calls (the wake pipe wakes
        # it), and finishes the runs it has.
        self.terminating = True

    def _stop(self) -> None:
        if not self.stopping:
            self.stopping = True
            self.selector.unregister(self.listener)
            self.listener.close()  # frees the name: a new server may start at once

    def _accept(self) -> None:
        import selectors
        import socket
        from contextlib import suppress

        connection, _ = self.listener.accept()
        try:
            connection.settimeout(REPLY_TIMEOUT)
            credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            if _uid(credentials) != os.getuid():
                connection.close()  # another user's process: never run anything for it
                return
            message, streams = self._receive(connection)
        except (OSError, ValueError, EOFError, TypeError):
            connection.close()
            return
        try:
            key, argv, root, env = message
            reason = self._decline(key)
            if reason:
                connection.sendall(b"%s\n" % reason)
                connection.close()
                return
            pid = os.fork()
            if pid == 0:
                self._child(connection, argv, root, env, streams)  # never returns
            with suppress(OSError):
                os.setpgid(pid, pid)  # also done in the child: whichever comes first
            self.runs[pid] = connection
            # Watched from now on: a client gone before or after the reply kills the run.
            self.selector.register(connection, selectors.EVENT_READ)
            connection.sendall(b"run %d\n" % pid)
            connection.setblocking(False)
        except OSError:
            if connection not in self.runs.values():
                connection.close()
        finally:
            for fd in streams:
                os.close(fd)

    @staticmethod
    def _receive(
        connection: socket.socket,
    ) -> tuple[tuple[Key, list[str], str, dict[str, str]], list[int]]:
        import socket

        data, fds, _, _ = socket.recv_fds(connection, 65536, 3)
        try:
            if len(data) < HEADER or len(fds) != 3:
                raise ValueError("a request without its length or its three streams")
            size = int.from_bytes(data[:HEADER], "big")
            body = bytearray(data[HEADER:])
            while len(body) < size:
                chunk = connection.recv(size - len(body))
                if not chunk:
                    raise EOFError("a request cut short")
                body += chunk
            message = marshal.loads(bytes(body))
            if not isinstance(message, tuple) or len(message) != 4:
                raise ValueError("not a request")
            _, argv, root, env = message
            if not (isinstance(argv, list) and isinstance(root, str) and isinstance(env, dict)):
                raise ValueError("not a request")
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return message, fds

    def _decline(self, key: object) -> bytes:
        if key != self.key:
            return b"other"  # two keys with one digest: let the run go ahead plainly
        if self.stopping:
            return b"stopping"
        if any(file_stamp(path) != stamp for path, stamp in self.files.items()):
            self._stop()  # a tool upgraded in place: its next run starts a new server
            return b"stale"
        if "threading" in sys.modules and sys.modules["threading"].active_count() > 1:
            return b"busy"  # a fork of a process with threads is not safe
        return b""

    def _child(
        self, connection: socket.socket, argv: list[str], root: str, env: dict[str, str],
        streams: list[int],
    ) -> NoReturn:  # fmt: skip
        """In the fork: become the plain run of the script, then exit with its code."""
        import signal

        code = 1
        try:
            _die_with_server(server=os.getppid())
            os.setpgid(0, 0)  # its own group: a kill reaches whatever it starts
            signal.set_wakeup_fd(-1)
            for number in (signal.SIGCHLD, signal.SIGTERM):
                signal.signal(number, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.selector.close()
            self.listener.close()
            connection.close()
            for other in self.runs.values():
                other.close()
            for target, fd in enumerate(streams):
                os.dup2(fd, target)
                os.close(fd)
            os.chdir(root)
            os.environ.clear()
            os.environ.update(env)
            sys.argv = [self.script, *argv[1:]]
            if "random" in sys.modules:
                sys.modules["random"].seed()  # a fork shares the server's random state
            code = _run_script(self.script)
        finally:
            os._exit(code)

    def _client_spoke(self, connection: socket.socket) -> None:
        """A client says nothing while its run lasts: data or EOF means kill the run."""
        import signal
        from contextlib import suppress

        for pid, owner in self.runs.items():
            if owner is connection:
                with suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
                self.selector.unregister(connection)
                return

    def _reap(self) -> None:
        from contextlib import suppress

        while self.runs:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            connection = self.runs.pop(pid, None)
            if connection is None:
                continue
            with suppress(KeyError):  # unregistered when its client went away
                self.selector.unregister(connection)
            try:
                connection.setblocking(True)
                connection.sendall(b"exit %d\n" % os.waitstatus_to_exitcode(status))
            except OSError:
                pass  # the client is gone: nobody to tell
            connection.close()


def _die_with_server(server: int) -> None:
    """Have the kernel kill this run when its server dies (``PR_SET_PDEATHSIG``).

    Without it, a server killed with SIGKILL would leave its runs going, with nobody to tell
    their clients or to stop them.
    """
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != server:  # it died before the call took effect
        os._exit(128 + signal.SIGKILL)


def _run_script(script: str) -> int:
    """Run the script as ``__main__`` and end as the interpreter would; its exit code."""
    import runpy

    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit:
        if exit.code is None:
            code = 0
        elif isinstance(exit.code, int):
            code = exit.code
        else:
            print(exit.code, file=sys.stderr)
            code = 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    # What an interpreter does on its way out: wait for threads, run atexit, flush.
    if "threading" in sys.modules:
        getattr(sys.modules["threading"], "_shutdown", lambda: None)()
    import atexit

    getattr(atexit, "_run_exitfuncs", lambda: None)()
    from contextlib import suppress

    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    return code


def _uid(credentials: bytes) -> int:
    """The user id in a ``SO_PEERCRED`` answer (a ``struct ucred``: pid, uid, gid)."""
    return int.from_bytes(credentials[4:8], sys.byteorder)


def main(argv: Sequence[str]) -> int:
    """``python -m pytest_worktree_gates.preload SCRIPT ROOT``, as :func:`launch` starts it."""
    if len(argv) != 2:
        print("usage: python -m pytest_worktree_gates.preload SCRIPT ROOT", file=sys.stderr)
        return 2
    script, root = argv
    try:
        server = Server(script, root, idle_seconds(os.environ))
    except OSError:
        return 0  # the name is taken: another server for this key is up
    server.preload()
    server.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
