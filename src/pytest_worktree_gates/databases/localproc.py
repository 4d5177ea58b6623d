"""Process plumbing for the local backend: whom servers run as, where binaries are, pids.

``initdb`` and ``mariadbd`` refuse to run as root, and sessions and CI run as root. So when the
effective uid is 0 the server binaries (never our Python) run as an unprivileged account that
owns the data dir, and every directory above the data dir must let that account pass.
"""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.git import clean_env

# The account each engine's server runs as when we are root; the first that exists wins.
ACCOUNTS = {
    "postgres": ("postgres", "nobody"),
    "mysql": ("mysql", "nobody"),
    "redis": ("redis", "nobody"),
}

# Where distributions keep server binaries that are not on PATH, newest version first.
SEARCH = {
    "postgres": sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True),
    "mysql": ["/usr/sbin", "/usr/libexec"],
    "redis": ["/usr/sbin"],
}

PACKAGES = {
    "postgres": "postgresql (Debian/Ubuntu: apt-get install postgresql; macOS: brew install "
    "postgresql)",
    "mysql": "mariadb-server (Debian/Ubuntu: apt-get install mariadb-server; macOS: brew install "
    "mariadb)",
    "redis": "redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install "
    "redis)",
}


@dataclass(frozen=True)
class Account:
    """Who runs a server: ourselves (uid None) or an unprivileged account."""

    name: str
    uid: int | None = None
    gid: int | None = None

    def owns(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)


SELF = Account("self")  # run a tool as the calling user (cp, and everything when not root)


def account(engine: str) -> Account:
    if os.geteuid() != 0:
        return Account(pwd.getpwuid(os.geteuid()).pw_name)
    for name in ACCOUNTS[engine]:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return Account(name, entry.pw_uid, entry.pw_gid)
    wanted = " or ".join(ACCOUNTS[engine])
    raise GatesError(
        f"running as root, and no unprivileged account ({wanted}) exists to run the {engine} "
        "server; create one (useradd --system nobody) or run as a normal user"
    )


def blocked_parent(path: Path, who: Account) -> Path | None:
    """The first directory above ``path`` that ``who`` cannot traverse, if any."""
    if who.uid is None:
        return None
    for folder in reversed(path.parents):
        info = folder.stat()
        if info.st_uid == who.uid:
            bit = 0o100
        elif info.st_gid == who.gid:
            bit = 0o010
        else:
            bit = 0o001
        if not info.st_mode & bit:
            return folder
    return None


def check_reachable(path: Path, who: Account) -> None:
    blocked = blocked_parent(path, who)
    if blocked is not None:
        raise GatesError(
            f"the {who.name} account that runs the local server cannot reach {path}: "
            f"{blocked} is mode {blocked.stat().st_mode & 0o777:o}; allow traversal with "
            f"`chmod o+x {blocked}` or keep the repository elsewhere"
        )


def binary(engine: str, name: str) -> str:
    """The path of a server binary, or one error naming the package that provides it."""
    found = shutil.which(name)
    if found:
        return found
    for folder in SEARCH[engine]:
        candidate = Path(folder) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise GatesError(
        f"`{name}` was not found on PATH; the local backend needs {PACKAGES[engine]}, "
        'or use backend = "docker"'
    )


def die_with_parent() -> None:
    """In the child: get SIGKILL if we die. A ``kill -9`` of pytest during provisioning must
    not leave an ``initdb`` or ``mariadb-install-db`` writing into a data dir that the next
    run wipes and rebuilds. Servers that daemonize fork away from this and are unaffected.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def run_as(
    who: Account,
    command: Sequence[str],
    cwd: Path,
    *,
    stdin: str | None = None,
    what: str,
) -> str:
    """Run a server tool as ``who``; a failure is one error with the tool's own last lines."""
    done = subprocess.run(
        list(command),
        cwd=cwd,
        env=server_env(),
        input=stdin,
        capture_output=True,
        text=True,
        user=who.uid,
        group=who.gid,
        extra_groups=[] if who.uid is not None else None,
        preexec_fn=die_with_parent,
        check=False,
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise GatesError(f"{what} failed (exit {done.returncode}): {' | '.join(lines)}")
    return done.stdout


def spawn_as(who: Account, command: Sequence[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start a long-running server detached from our session, so that it outlives us."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=server_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            user=who.uid,
            group=who.gid,
            extra_groups=[] if who.uid is not None else None,
            start_new_session=True,
        )


def server_env() -> dict[str, str]:
    """A clean environment: no PG*/MYSQL_* settings of the caller leak into the server."""
    env = clean_env()
    for name in list(env):
        if name.startswith(("PG", "MYSQL", "MARIADB", "REDIS")):
            del env[name]
    env["LC_ALL"] = "C"
    return env


def read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split()
    except (OSError, UnicodeDecodeError):
        return None
    return int(first[0]) if first and first[0].isdigit() else None


def alive(pid: int | None, home: Path) -> bool:
    """Whether ``pid`` runs with its working directory inside ``home``.

    Every server we start runs in its data dir, so the check tells our server from an unrelated
    process that inherited a stale pidfile's number; we never adopt or kill such a process.
    Redis rewrites its command line, so the working directory is the one reliable mark.
    """
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
        cwd = os.readlink(f"/proc/{pid}/cwd")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError, PermissionError):
        # Gone, or not ours to inspect: either way not a server we may adopt or kill.
        return False
    return state != "Z" and (cwd == str(home) or cwd.startswith(f"{home}/"))


def terminate(pid: int | None, home: Path, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; wait until the process is gone."""
    if pid is None or not alive(pid, home):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid, home):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.02)


def kill_strays(home: Path) -> int:
    """SIGKILL every process working inside ``home``: leftovers of a killed provisioning.

    ``mariadb-install-db`` is a script whose ``mariadbd --bootstrap`` child outlives it; such a
    process must be gone before its data dir is wiped and rebuilt. Nothing else works in our
    private engine dir, so the working directory identifies them exactly.
    """
    killed = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            pid = int(entry.name)
            if alive(pid, home):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append(pid)
    deadline = time.monotonic() + 10
    while any(alive(pid, home) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(killed)


def make_home(path: Path, who: Account) -> None:
    """The engine's directory: ours to list, the server account's to write."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    who.owns(path)


def write_private(path: Path, text: str, who: Account) -> None:
    """A file only the server account (and root) can read: it holds the password."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    who.owns(path)
