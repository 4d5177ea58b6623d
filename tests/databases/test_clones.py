"""The pool of clones behind ``isolated_postgres``, on a real local PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_worktree_gates.databases import templates
from tests.databases.helpers import child_env, cli, local_project, run_pytest
from tests.databases.test_fixtures import SETUP, toml_string

CONFIG = """
[tool.worktree-gates.databases]
backend = "local"
[tool.worktree-gates.databases.postgres]
database = "shop"
setup = [{setup}]
fingerprint = ["schema.sql"]
"""

# Each test must see a clone no other test touched: an empty table. It writes a row, so a
# clone handed out twice would show it to the next test.
TESTS = "import pathlib\n\nimport psycopg\n\n" + "".join(
    f"""
def test_{n}(isolated_postgres):
    with psycopg.connect(isolated_postgres.url, autocommit=True) as connection:
        assert connection.execute("SELECT count(*) FROM items").fetchone()[0] == 0
        connection.execute("INSERT INTO items VALUES ('used')")
        oid = connection.execute(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        ).fetchone()[0]
    with pathlib.Path("clones.log").open("a") as log:  # xdist workers keep no stdout
        log.write(f"{{oid}} {{isolated_postgres.database}}\\n")
"""
    for n in range(6)
)

HANGS = """
import pathlib
import time


def test_hangs(isolated_postgres):
    pathlib.Path("taken.txt").write_text(isolated_postgres.database)
    time.sleep(120)
"""


@pytest.fixture
def project() -> Iterator[Path]:
    """A committed project with a template on the local backend."""
    config = CONFIG.format(setup=toml_string(f"{sys.executable} -c {SETUP!r}"))
    with local_project("shop", config, "postgres") as root:
        (root / "schema.sql").write_text("-- v1\n")
        (root / "test_clones.py").write_text(TESTS)
        yield root


def run(root: Path, *args: str) -> dict[int, str]:
    """Run the six tests; the clone each got, as {oid: name}."""
    run_pytest(root, "test_clones.py", *args)
    log = root / "clones.log"
    lines = log.read_text().splitlines()
    log.unlink()
    clones = {int(line.split()[0]): line.split()[1] for line in lines}
    assert len(clones) == len(lines) == 6  # six distinct databases
    return clones


def clones(root: Path) -> dict[int, str]:
    """Every clone of the project's database on its server, as {oid: name}."""
    import psycopg

    url = cli(root, "db", "url", "postgres").stdout.strip().rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT oid, datname FROM pg_database WHERE datname LIKE 'shop\\_iso\\_%'"
        ).fetchall()
    return {int(oid): str(name) for oid, name in rows}


def settle(root: Path, ready: int, key: str | None = None) -> dict[int, str]:
    """Wait until the refill after a session is done: ``ready`` ready clones and nothing else."""
    deadline = time.monotonic() + 60
    while True:
        found = clones(root)
        good = [name for name in found.values() if "_r" in name and (key is None or key in name)]
        if len(good) == ready and len(found) == ready:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"the pool never settled at {ready} ready clones: {found}")
        time.sleep(0.1)


def template_key(root: Path) -> str:
    names = {name.split("_iso_", 1)[1].split("_r", 1)[0] for name in clones(root).values()}
    assert len(names) == 1, names
    return names.pop()


def test_clones_are_fresh_kept_for_the_next_session_and_claimed_once(project: Path) -> None:
    first = run(project)
    pool = settle(project, ready=6)  # the used clones dropped; the pool refilled to six
    assert not set(pool) & set(first)
    # Under xdist the workers claim from the same pool; each clone goes to exactly one test,
    # and every test's clone was made before the session started.
    second = run(project, "-n", "2")
    assert set(second) <= set(pool)
    assert all(name.startswith("shop_iso_t") for name in second.values())


def test_clones_of_a_stale_template_are_dropped(project: Path) -> None:
    run(project)
    settle(project, ready=6)
    old = template_key(project)
    (project / "schema.sql").write_text("-- v2\n")
    run(project)
    settle(project, ready=6)
    new = template_key(project)
    assert new != old  # every clone of the old template is gone, none was handed out


def test_a_killed_session_leaves_nothing_that_breaks_the_next(project: Path) -> None:
    (project / "test_hangs.py").write_text(HANGS)
    hanging = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_hangs.py"],
        cwd=project,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    marker = project / "taken.txt"
    deadline = time.monotonic() + 60
    while not marker.exists() or not marker.read_text():
        assert hanging.poll() is None and time.monotonic() < deadline, "the session never started"
        time.sleep(0.05)
    os.killpg(hanging.pid, signal.SIGKILL)
    hanging.wait()
    taken = marker.read_text()
    assert taken in clones(project).values()
    (project / "test_hangs.py").unlink()
    run(project)
    assert taken not in settle(project, ready=6).values()  # the next session swept it


def test_leftovers_keep_only_ready_clones_of_this_template_and_live_claims() -> None:
    stem = templates.clone_stem("shop")
    live, dead = os.getpid(), 999_999_999
    names = [
        f"{stem}aaaaaaaaaaaa_r0011aabb",  # ready, this template: kept
        f"{stem}bbbbbbbbbbbb_r0011aabb",  # ready, another template: dropped
        f"{stem}t{live}_ab12_3",  # claimed by a live session: kept
        f"{stem}t{dead}_ab12_0",  # claimed by a killed session: dropped
        f"{stem}main_0",  # made by a release before the pool: dropped
        f"{stem}feature",  # another worktree's database on a shared server: left alone
    ]
    assert templates.leftovers(names, stem, "aaaaaaaaaaaa", templates.pid_alive) == [
        names[1],
        names[3],
        names[4],
    ]


def test_clone_names_fit_postgres_even_for_a_long_database_name() -> None:
    stem = templates.clone_stem("a" * 63)
    claimed = f"{stem}t{2**22}_ffff_999999"
    assert len(claimed) <= 63 and len(f"{templates.ready_prefix(stem, 'f' * 12)}ffffffff") <= 63
    assert templates.taken_owner(stem, claimed) == 2**22
    assert stem != templates.clone_stem("a" * 62 + "b")  # shortened with a hash, not cut


def test_the_refill_drops_used_clones_and_fills_the_pool_to_its_size(project: Path) -> None:
    from pytest_worktree_gates.databases import refill
    from pytest_worktree_gates.databases.provider import Provider

    run(project)
    ready = settle(project, ready=6)
    key = template_key(project)
    used = sorted(ready.values())[0]  # stands for a clone whose test is over
    provider = Provider(project)
    job = refill.Job(
        server=provider.admin("postgres"),
        template=templates.template_name("shop", key),
        key=key,
        stem=templates.clone_stem("shop"),
        drops=(used,),
        ahead=8,
    )
    assert refill.run(job) == 3  # five left after the drop, three more make eight
    after = clones(project)
    assert used not in after.values() and len(after) == 8
    assert refill.run(job) == 0  # a full pool is left as it is
