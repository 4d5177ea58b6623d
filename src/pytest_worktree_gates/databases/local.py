"""The local backend: PostgreSQL, MariaDB and Redis as processes from installed binaries.

Each worktree's servers keep their data under its own git dir
(``<git-dir>/worktree-gates/<engine>/``), so a worktree removed by git takes its data with it.

Crash safety rests on one marker file per engine, ``ready.json``, written last: data without a
marker is a provisioning that was interrupted and is wiped and redone, never trusted. A server
that still runs from an earlier session is adopted only when its pidfile names a live process
running in our data dir *and* it answers the protocol probe with this worktree's password.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from pytest_worktree_gates.databases import localproc as proc
from pytest_worktree_gates.databases.base import HOST, Server, Status, Target, probe, wait_ready
from pytest_worktree_gates.databases.filelock import FileLock
from pytest_worktree_gates.errors import GatesError

NAME = "local"
START_TIMEOUT = 60.0


def _fingerprint(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()[:16]


def _marker(home: Path) -> dict[str, str] | None:
    try:
        data: dict[str, str] = json.loads((home / "ready.json").read_text())
    except (OSError, ValueError):
        return None
    return data


def _mark(home: Path, target: Target) -> None:
    (home / "ready.json").write_text(json.dumps({"password": _fingerprint(target.password)}))


def _pidfile(target: Target) -> Path:
    name = {"postgres": "data/postmaster.pid", "mysql": "mariadbd.pid", "redis": "redis.pid"}
    return target.home / name[target.engine.name]


def _pid(target: Target) -> int | None:
    pid = proc.read_pid(_pidfile(target))
    return pid if proc.alive(pid, target.home) else None


def status(target: Target) -> Status:
    pid = _pid(target)
    if pid is not None:
        return Status("running", str(pid))
    if _marker(target.home) is not None:
        return Status("stopped", "")
    return Status("absent", "")


def up(target: Target) -> tuple[Server, str]:
    """Start or adopt the server; returns it and its pid. The caller holds the engine lock."""
    check_binaries(target.engine.name)  # before anything is created
    who = proc.account(target.engine.name)
    home = target.home
    home.parent.mkdir(parents=True, exist_ok=True)
    proc.check_reachable(home, who)
    proc.make_home(home, who)
    server = target.admin(NAME)
    pid = _pid(target)
    marker = _marker(home)
    if pid is not None and marker is not None:
        if probe(server) is None:
            return server, str(pid)
        _stop(target, pid)  # ours, but not answering with this password: restart it
    if marker is None:
        # An interrupted provisioning: its helpers may still run; stop them, then start over.
        proc.kill_strays(home)
        _wipe_data(home)
    starter = {"postgres": _postgres, "mysql": _mysql, "redis": _redis}[target.engine.name]
    pid_text = starter(target, who, marker)
    _mark(home, target)
    return server, pid_text


def check_binaries(engine: str) -> None:
    """Every binary the engine's server needs is installed, else one error naming the package."""
    if engine == "postgres":
        for name in ("initdb", "postgres"):
            proc.binary(engine, name)
    elif engine == "mysql":
        _mysql_binary("mariadb-install-db", "mariadb-install-db", "mysql_install_db")
        _mysql_binary("mariadbd", "mariadbd", "mysqld")
    else:
        proc.binary(engine, "redis-server")


def down(target: Target, purge: bool) -> None:
    """Stop the server; with ``purge`` also delete its data."""
    _stop(target, _pid(target))
    if purge:
        shutil.rmtree(target.home, ignore_errors=True)


def kill_orphan(home: Path, engine: str) -> None:
    """Stop a server whose worktree is gone (its data dir may already be deleted)."""
    # Its data is about to be deleted (or already is): no graceful shutdown is worth waiting for.
    proc.kill_strays(home)
    shutil.rmtree(home, ignore_errors=True)


def _stop(target: Target, pid: int | None) -> None:
    if pid is None:
        return
    # Postgres' SIGTERM is a "smart" shutdown that waits for clients; SIGINT is the fast one.
    if target.engine.name == "postgres":
        os.kill(pid, signal.SIGINT)
    proc.terminate(pid, target.home)


def _wipe_data(home: Path) -> None:
    for name in ("data", "ready.json"):
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


# -- PostgreSQL -------------------------------------------------------------------------------


def _pg_version() -> str:
    out = subprocess.run(
        [proc.binary("postgres", "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": the cache is keyed by 15.18.
    match = re.search(r"\(PostgreSQL\) (\S+)", out)
    return match.group(1) if match else "unknown"


def _pg_cache(target: Target, who: proc.Account) -> Path:
    """A pristine cluster made once per repo and PostgreSQL version; worktrees copy it.

    Copying it costs about 0.15 s where ``initdb`` costs about 0.6 s. It is built in a scratch
    dir and renamed into place, so a crash never leaves a half-made cache behind.
    """
    cache_root = target.common_dir / "worktree-gates" / "cache"
    cache_root.mkdir(parents=True, exist_ok=True)
    version = _pg_version()
    # "-w1": 1 MB WAL segments (see below); the name tells it from caches of older releases.
    cache = cache_root / f"postgres-{version}-w1"
    if cache.is_dir():
        return cache
    with FileLock(cache_root / "postgres.lock"):
        if cache.is_dir():
            return cache
        shutil.rmtree(cache_root / f"postgres-{version}", ignore_errors=True)  # older layout
        proc.check_reachable(cache_root, who)
        scratch = Path(tempfile.mkdtemp(prefix="initdb-", dir=cache_root))
        scratch.chmod(0o700)
        who.owns(scratch)
        initdb = proc.binary("postgres", "initdb")
        proc.run_as(
            who,
            [initdb, "-D", str(scratch), "-U", "postgres", "-E", "UTF8", "--locale=C",
             "--auth-local=peer", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions",
             # A 1 MB WAL segment instead of 16 MB: every worktree copies it, and copying is
             # most of a cold start (a test server never needs more WAL than a few segments).
             "--wal-segsize=1"],
            cwd=scratch,
            what="initdb",
        )  # fmt: skip
        scratch.rename(cache)
    return cache


def _postgres(target: Target, who: proc.Account, marker: dict[str, str] | None) -> str:
    home, data = target.home, target.home / "data"
    if marker is None:
        cache = _pg_cache(target, who)
        # cp -a keeps the owner (the server account) and modes; shutil would make them root's.
        proc.run_as(proc.SELF, ["cp", "-a", str(cache), str(data)], home, what="cp")
    if marker is None or marker.get("password") != _fingerprint(target.password):
        # Single-user mode sets the password with no listener at all, so there is never a moment
        # when the cluster accepts connections without it; the secret goes through stdin.
        out = proc.run_as(
            who,
            [proc.binary("postgres", "postgres"), "--single", "-D", str(data), "-c",
             "listen_addresses=", "-c", "unix_socket_directories=", "postgres"],
            cwd=data,
            stdin=f"ALTER USER postgres PASSWORD '{target.password}';\n",
            what="setting the PostgreSQL password",
        )  # fmt: skip
        if "ERROR" in out:
            raise GatesError(f"setting the PostgreSQL password failed: {out.strip()}")
    settings = {
        "listen_addresses": HOST,
        "port": str(target.port),
        "unix_socket_directories": "",
        # A test database need not survive a power cut; these make CREATE DATABASE fast.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        # No replicas: the WAL need only allow crash recovery, which keeps clones cheap.
        "wal_level": "minimal",
        "max_wal_senders": "0",
    }
    # The postmaster is started directly, as `pg_ctl start` would, but without its wait: that
    # looks every 100 ms, while the protocol probe below starts at 20 ms, and the process handle
    # tells at once when the server died.
    server_process = proc.spawn_as(
        who,
        [proc.binary("postgres", "postgres"), "-D", str(data),
         *(arg for name, value in settings.items() for arg in ("-c", f"{name}={value}"))],
        cwd=data,
        log=home / "server.log",
    )  # fmt: skip

    def died() -> str | None:
        if server_process.poll() is None:
            return None
        return _died(target, "server.log") or "PostgreSQL stopped while starting"

    wait_ready(target.admin(NAME), START_TIMEOUT, died)
    return str(server_process.pid)


def _died(target: Target, log: str) -> str | None:
    if _pid(target) is not None:
        return None
    try:
        tail = (target.home / log).read_text(errors="replace").strip().splitlines()[-3:]
    except OSError:
        tail = []
    return f"{target.engine.label} stopped while starting: {' | '.join(tail) or 'no log'}"


# -- MariaDB ----------------------------------------------------------------------------------


def _mysql_binary(*names: str) -> str:
    for name in names[1:]:
        try:
            return proc.binary("mysql", name)
        except GatesError:
            continue
    return proc.binary("mysql", names[0])


def _socket_path(home: Path) -> Path:
    # A unix socket path is limited to ~107 bytes; deep git dirs need a short stand-in.
    path = home / "mariadbd.sock"
    if len(str(path)) < 100:
        return path
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"wtg-{digest}.sock"


def _mysql(target: Target, who: proc.Account, marker: dict[str, str] | None) -> str:
    home, data = target.home, target.home / "data"
    if marker is None:
        data.mkdir(mode=0o700)
        who.owns(data)
        proc.run_as(
            who,
            [_mysql_binary("mariadb-install-db", "mariadb-install-db", "mysql_install_db"),
             "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
             "--skip-test-db", "--skip-name-resolve"],
            cwd=home,
            what="mariadb-install-db",
        )  # fmt: skip
    # The init file runs before the server accepts connections: the password is set with no
    # window where root has none. It is deleted once the server is up.
    secret = target.password
    init = home / "init.sql"
    statements = [
        f"CREATE USER IF NOT EXISTS 'root'@'{HOST}' IDENTIFIED BY '{secret}'",
        f"ALTER USER 'root'@'{HOST}' IDENTIFIED BY '{secret}'",
        f"GRANT ALL PRIVILEGES ON *.* TO 'root'@'{HOST}' WITH GRANT OPTION",
        f"ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED BY '{secret}'",
        "DELETE FROM mysql.global_priv WHERE User = ''",
        "FLUSH PRIVILEGES",
    ]
    proc.write_private(init, ";\n".join(statements) + ";\n", who)
    log = home / "error.log"
    server = proc.spawn_as(
        who,
        [_mysql_binary("mariadbd", "mariadbd", "mysqld"), "--no-defaults", f"--datadir={data}",
         f"--port={target.port}", f"--bind-address={HOST}", f"--socket={_socket_path(home)}",
         f"--pid-file={home / 'mariadbd.pid'}", f"--log-error={log}", f"--init-file={init}",
         "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
         "--innodb-flush-log-at-trx-commit=0"],
        cwd=data,
        log=home / "stdout.log",
    )  # fmt: skip

    def died() -> str | None:
        if server.poll() is None:
            return None
        return _died(target, "error.log") or "MariaDB stopped while starting"

    try:
        wait_ready(target.admin(NAME), START_TIMEOUT, died)
    finally:
        init.unlink(missing_ok=True)
    return str(server.pid)


# -- Redis ------------------------------------------------------------------------------------


def _redis(target: Target, who: proc.Account, marker: dict[str, str] | None) -> str:
    home, data = target.home, target.home / "data"
    data.mkdir(mode=0o700, exist_ok=True)
    who.owns(data)
    # The password lives in a config file only the server account reads, never in argv
    # (which every user sees in `ps`).
    config = "\n".join(
        [
            f"bind {HOST}",
            f"port {target.port}",
            "protected-mode yes",
            f"requirepass {target.password}",
            f"dir {data}",
            f"pidfile {home / 'redis.pid'}",
            f"logfile {home / 'redis.log'}",
            "daemonize yes",
            "databases 64",  # one per xdist worker
            'save ""',
            "appendonly no",
        ]
    )
    proc.write_private(home / "redis.conf", config + "\n", who)
    proc.run_as(
        who, [proc.binary("redis", "redis-server"), str(home / "redis.conf")], cwd=data,
        what="redis-server",
    )  # fmt: skip
    wait_ready(target.admin(NAME), START_TIMEOUT, lambda: None)
    return str(proc.read_pid(home / "redis.pid"))
