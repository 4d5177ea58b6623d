"""Refill a template's pool of ready clones after a session, in a process of its own.

A session must not wait at its end for clones that only the next session will use, nor for
dropping the clones its last tests used. So :func:`spawn` starts this module detached from the
session; it drops those clones, makes ready clones until the pool holds ``ahead``, and exits.
Its job (the server's password included) arrives on stdin, never in argv. If it is killed, or
the template changes under it, the next session's sweep drops whatever it left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

from pytest_worktree_gates.databases.base import Server, connect


@dataclass(frozen=True)
class Job:
    server: Server
    template: str
    key: str
    stem: str
    drops: tuple[str, ...]
    ahead: int


def run(job: Job) -> int:
    """Drop ``job.drops`` and fill the pool to ``job.ahead`` ready clones; how many were made."""
    from pytest_worktree_gates.databases.templates import Pool

    pool = Pool(connect(job.server, autocommit=True), job.template, job.key, job.stem)
    made = 0
    try:
        for name in job.drops:
            pool.drop(name)
        while pool.make(job.ahead):
            made += 1
    finally:
        pool.connection.close()
    return made


def spawn(job: Job) -> None:
    """Start :func:`run` for ``job`` in a detached process and return at once."""
    # Coverage would write this process's data after the session's report was made.
    env = {name: value for name, value in os.environ.items() if not name.startswith("COV")}
    process = subprocess.Popen(
        [sys.executable, "-m", __name__],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    assert process.stdin is not None
    with process.stdin:
        process.stdin.write(json.dumps(asdict(job)).encode())
    _detached.append(process)  # never waited for; kept so that it is not reported as leaked


_detached: list[subprocess.Popen[bytes]] = []


def main() -> int:  # pragma: no cover - runs detached, outside any coverage measurement
    data = json.load(sys.stdin)
    server = data.pop("server")
    server["templates"] = tuple(tuple(pair) for pair in server["templates"])
    job = Job(server=Server(**server), **{**data, "drops": tuple(data["drops"])})
    try:
        run(job)
    except Exception:  # the server stopped or the template changed: the next sweep tidies up
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
