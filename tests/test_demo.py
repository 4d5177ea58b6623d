"""./scripts/demo end to end: the README's first command, on examples/fastapi-service.

The demo runs the real workflow (init, new, hooks, the unit and integration gates, approve, a
concurrent second worktree, merge with an import conflict, cleanup) with real databases, and
checks every step itself; these tests check what a user sees and that nothing is left behind.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import docker
import docker.errors
import pytest
import requests.exceptions

from pytest_worktree_gates.databases import docker as docker_backend
from pytest_worktree_gates.databases import local
from pytest_worktree_gates.errors import GatesError
from tests.conftest import SERVICES_HINT, require

ROOT = Path(__file__).resolve().parents[1]
STEP_HEADER = re.compile(r"^\[(\d)/9\] ", re.MULTILINE)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for this module's demo runs: the first pays for checking the example
    against FastAPI, SQLAlchemy and pydantic (most of the unit gate's time), the others reuse it.
    """
    return tmp_path_factory.mktemp("mypy-cache")


def engines_problem() -> str:
    """Why the demo could not get its PostgreSQL and Redis here, or ''."""
    if os.geteuid() == 0 and os.environ.get("WTG_SERVICES") != "0":
        return ""  # the demo runs ./scripts/services, which installs and starts what is missing
    try:
        for engine in ("postgres", "redis"):
            local.check_binaries(engine)
        return ""
    except GatesError as error:
        missing = str(error)
    return "" if docker_backend.engine_answers() else f"no Docker engine answers and {missing}"


def run_demo(mypy_cache: Path, *args: str, **extra_env: str) -> tuple[int, str, Path]:
    """Run the demo as a user would; its exit code, output and temporary repository."""
    require(engines_problem(), SERVICES_HINT)
    # The outer coverage run must not follow the demo into every process it starts.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env.update(extra_env, MYPY_CACHE_DIR=str(mypy_cache))
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
        check=False,
    )
    found = re.search(r"on examples/fastapi-service, in (\S+)", done.stdout)
    assert found, done.stdout
    return done.returncode, done.stdout, Path(found.group(1))


def assert_nothing_left(repo: Path) -> None:
    """No directory, container or server process of the demo's repository survives it."""
    assert not repo.parent.exists()
    ours = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(repo.parent).encode() in cmdline.read_bytes():
                ours.append(cmdline.parent.name)
        except OSError:
            continue  # the process ended meanwhile
    assert ours == [], f"processes of the demo still run: {ours}"
    try:
        client = docker.from_env(timeout=10)
        containers = client.containers.list(all=True, filters={"name": f"wtg-{repo.name}-"})
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return  # no engine: the demo used local servers
    assert [c.name for c in containers] == []


def test_the_demo_runs_the_whole_workflow_and_removes_what_it_made(mypy_cache: Path) -> None:
    code, out, repo = run_demo(mypy_cache)

    assert code == 0, out
    assert [int(n) for n in STEP_HEADER.findall(out)] == list(range(1, 10))
    assert "merge: resolved service/api.py automatically" in out
    assert "gate unit PASSED" in out and "gate integration PASSED" in out
    assert "gate final PASSED" in out
    assert "Summary: 9 steps in" in out
    listed = out[out.index("What is left") : out.index("Summary: 9 steps in")]
    assert "add-tags" in listed and "add-items" not in listed
    assert_nothing_left(repo)


def stopped_at_the_unit_gate(mypy_cache: Path, broken: str, exited: int) -> tuple[str, Path]:
    """Run the demo with ``--broken``; check that the unit gate (step 4) stopped it with
    ``exited``. What the demo then told, unwrapped as read, and its temporary repository."""
    code, out, repo = run_demo(mypy_cache, f"--broken={broken}")
    assert code == 1, out
    assert [int(n) for n in STEP_HEADER.findall(out)] == [1, 2, 3, 4]
    told = " ".join(out[out.index("The unit gate stopped") :].split())
    assert f"The unit gate stopped this change at step 4: `pytest --gates` exited {exited}" in told
    return told, repo


def test_a_failing_test_stops_the_change_at_the_unit_gate(mypy_cache: Path) -> None:
    told, repo = stopped_at_the_unit_gate(mypy_cache, "test", exited=1)

    assert re.search(r"tests: 1 failed, \d+ passed", told), told
    assert "FAILED tests/test_api.py::test_a_batch_adds_every_item" in told
    assert "Fix the code (or the test, if the test is wrong)" in told
    assert "Commit the fix" in told and "Run the gate again: pytest --gates" in told
    assert "Nothing reached main" in told
    assert "./scripts/demo --broken=test --keep` keeps it" in told
    assert_nothing_left(repo)


def test_untested_code_stops_the_change_at_the_unit_gate(mypy_cache: Path) -> None:
    told, repo = stopped_at_the_unit_gate(mypy_cache, "coverage", exited=6)

    assert re.search(
        r"coverage\.diff: \d+\.\d % of the changed lines are tested; this project asks for "
        r"90\.0 % or more",
        told,
    ), told
    assert re.search(r"service/api\.py: lines \d+-\d+ are not run by any test", told), told
    assert "Write a test that runs those lines" in told
    assert "tests:" not in told  # the tests passed: only coverage is to blame
    assert_nothing_left(repo)


def test_a_step_that_misbehaves_fails_the_demo_and_leaves_nothing(mypy_cache: Path) -> None:
    # `new` killed with SIGKILL right after `git worktree add`: a crash, not a gate verdict.
    code, out, repo = run_demo(mypy_cache, WORKTREE_GATES_CRASH_AT="worktree-added")

    assert code == 2, out
    assert [int(n) for n in STEP_HEADER.findall(out)] == [1, 2]
    assert "demo: step 2 misbehaved: `worktree-gates new add-items" in out
    assert "exited 137, expected 0" in out
    assert_nothing_left(repo)


def test_an_unknown_breakage_is_refused_before_anything_is_made() -> None:
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--broken=typo"],
        cwd=ROOT,
        env={**os.environ, "WTG_SERVICES": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "scripts/demo: error: argument --broken: invalid choice: 'typo'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "fastapi-service, in" not in done.stdout
