"""Port leases against the real state database and real sockets."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_worktree_gates import state
from pytest_worktree_gates.databases import ports
from pytest_worktree_gates.errors import GatesError

SPAN = (20000, 29999)
# Fixed spans below stay under the kernel's ephemeral range (32768+), where outgoing
# connections could hold a port at any moment.


def test_preferred_port_is_stable_and_inside_the_span() -> None:
    first = ports.preferred_port("/repo/.git", "postgres", SPAN)
    assert first == ports.preferred_port("/repo/.git", "postgres", SPAN)
    assert SPAN[0] <= first <= SPAN[1]
    assert first != ports.preferred_port("/repo/.git/worktrees/b", "postgres", SPAN)
    assert ports.preferred_port("x", "redis", (30000, 30000)) == 30000


def test_candidates_wrap_around_and_cover_the_span_once() -> None:
    assert list(ports.candidates(5, (3, 7))) == [5, 6, 7, 3, 4]


def test_lease_is_kept_released_and_moved_off_a_taken_port(tmp_path: Path) -> None:
    with state.connect(tmp_path) as db:
        port = ports.lease(db, "/a/.git", "postgres", SPAN)
        assert ports.lease(db, "/a/.git", "postgres", SPAN) == port
        other = ports.lease(db, "/b/.git", "postgres", SPAN)
        assert other != port
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            assert not ports.can_bind(port)
            # A server is about to start: the squatted port is given up for a free one.
            moved = ports.lease(db, "/a/.git", "postgres", SPAN, must_bind=True)
        assert moved not in (port, other)
        assert [lease.port for lease in ports.all_leases(db)] == [moved, other]
        assert ports.release(db, "/a/.git") == 1
        assert ports.find(db, "/a/.git", "postgres") is None
        assert ports.release(db, "/b/.git", "postgres") == 1


def test_a_lease_outside_a_narrowed_span_moves_inside(tmp_path: Path) -> None:
    with state.connect(tmp_path) as db:
        ports.lease(db, "/a/.git", "redis", (11000, 11000))
        assert ports.lease(db, "/a/.git", "redis", (11001, 11001)) == 11001


def test_an_exhausted_range_is_one_clear_error_and_leases_nothing(tmp_path: Path) -> None:
    with state.connect(tmp_path) as db:
        ports.lease(db, "/a/.git", "postgres", (11010, 11011))
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 11011))
            squatter.listen()
            with pytest.raises(GatesError, match=r"range 11010-11011 is exhausted.*port-range"):
                ports.lease(db, "/b/.git", "postgres", (11010, 11011))
        assert ports.find(db, "/b/.git", "postgres") is None


LEASE = """
import sys
from pathlib import Path
from pytest_worktree_gates import state
from pytest_worktree_gates.databases import ports
with state.connect(Path(sys.argv[1])) as db:
    print(ports.lease(db, sys.argv[2], "postgres", (11020, 11027)))
"""


def test_eight_concurrent_processes_get_eight_distinct_ports(tmp_path: Path) -> None:
    # A span of exactly eight ports: every process must find a port no other one took.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LEASE, str(tmp_path), f"/wt{n}/.git"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(8)
    ]
    got = [int(proc.communicate(timeout=60)[0]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert len(set(got)) == 8
    with state.connect(tmp_path) as db:
        assert sorted(lease.port for lease in ports.all_leases(db)) == sorted(got)
