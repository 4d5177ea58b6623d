"""The warm path: a running local server found again from the facts its last start left.

Each test checks that the facts are used only for the worktree, configuration and server they
were written for; a stale fact must send the session down the full path, never to a wrong server.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git, init_repo
from tests.databases.helpers import (
    add_worktree,
    cli,
    local_project,
    run_pytest,
)

CONFIG = """
[tool.worktree-gates.databases]
backend = "local"
[tool.worktree-gates.databases.postgres]
database = "shop"
"""

WARM_TEST = """
import sys


def test_warm(worktree_postgres):
    # The warm path imports neither the config model nor git's helpers.
    assert "pytest_worktree_gates.config" not in sys.modules
    assert "pytest_worktree_gates.git" not in sys.modules
    print("SERVER", worktree_postgres.port, worktree_postgres.database)
"""


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    with local_project("shop", CONFIG, "postgres") as root:
        yield root


def facts(root: Path) -> Path:
    return root / ".git" / "worktree-gates" / "postgres" / "warm.json"


def status_port(root: Path) -> str:
    line = next(row for row in cli(root, "db", "status").stdout.splitlines() if "postgres" in row)
    return line.split()[2]


def test_a_warm_session_skips_config_and_git_and_finds_the_same_server(project: Path) -> None:
    cli(project, "db", "up")
    (project / "test_warm.py").write_text(WARM_TEST)
    try:
        output = run_pytest(project, "-s", "test_warm.py")
    finally:
        (project / "test_warm.py").unlink()
    assert f"SERVER {status_port(project)} shop" in output


def test_facts_are_only_used_for_their_config(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_worktree_gates.databases import warm
    from pytest_worktree_gates.databases.provider import Provider

    cli(project, "db", "up")
    found = warm.recall(project, "postgres")
    assert found is not None and str(found[0].port) == status_port(project)
    assert found[1] == "shop"

    # An override of the backend or of a URL may change everything.
    monkeypatch.setenv("WORKTREE_GATES_DATABASES_BACKEND", "local")
    assert warm.recall(project, "postgres") is None
    monkeypatch.delenv("WORKTREE_GATES_DATABASES_BACKEND")

    pyproject = project / "pyproject.toml"
    pyproject.write_text(CONFIG + 'env = { SHOP_URL = "{url}" }\n')
    try:
        assert warm.recall(project, "postgres") is None
        # The full path serves the new config and writes the facts anew.
        server = Provider(project).session("postgres")
        assert server.env == {"SHOP_URL": server.url}
        again = warm.recall(project, "postgres")
        assert again is not None and again[0].templates == (("SHOP_URL", "{url}"),)
    finally:
        pyproject.write_text(CONFIG)


def test_facts_are_only_used_for_their_worktree(project: Path) -> None:
    from pytest_worktree_gates.databases import warm

    cli(project, "db", "up")
    linked = add_worktree(project, "feature")
    try:
        assert warm.recall(linked, "postgres") is None  # nothing recorded for it yet
        # Even the main worktree's facts and secret, copied over, are not taken for its own.
        git_dir = project / ".git" / "worktrees" / linked.name / "worktree-gates"
        shutil.copytree(project / ".git" / "worktree-gates" / "postgres", git_dir / "postgres")
        shutil.copy(project / ".git" / "worktree-gates" / "postgres.password", git_dir)
        copied = git_dir / "postgres" / "warm.json"
        # With the linked worktree's own config key: only the worktree's identity is left.
        moved = json.loads(copied.read_text()) | {
            "config": warm.config_key(linked / "pyproject.toml")
        }
        copied.write_text(json.dumps(moved))
        assert warm.recall(linked, "postgres") is None
        # A subdirectory of the main worktree is that worktree.
        (project / "sub").mkdir(exist_ok=True)
        assert warm.recall(project / "sub", "postgres") is not None
    finally:
        git(project, "worktree", "remove", "--force", str(linked))


def test_facts_of_a_stopped_server_are_not_used(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_worktree_gates.databases import warm
    from pytest_worktree_gates.databases.provider import Provider

    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the database of no worker
    cli(project, "db", "up")
    kept = facts(project).read_text()
    port = status_port(project)
    cli(project, "db", "down")
    assert not facts(project).exists()  # `db down` forgets them
    facts(project).write_text(kept)  # and were they left behind, the probe refuses them
    assert warm.recall(project, "postgres") is None
    server = Provider(project).session("postgres")  # the full path starts it again
    assert str(server.port) == port and server.database == "shop"
    assert warm.recall(project, "postgres") is not None
    cli(project, "db", "down", "--purge")
    assert not facts(project).exists()


def test_the_git_dir_is_read_from_the_dot_git_entry(tmp_path: Path) -> None:
    from pytest_worktree_gates.databases import warm

    assert warm.find_git_dir(tmp_path) is None  # not inside any repository
    assert warm.recall(tmp_path, "postgres") is None
    (tmp_path / "repo" / "sub").mkdir(parents=True)
    (tmp_path / "repo" / ".git").write_text("not a pointer\n")
    assert warm.find_git_dir(tmp_path / "repo" / "sub") is None  # git would refuse it too
    (tmp_path / "repo" / ".git").write_text("gitdir: ../store/worktrees/repo\n")
    found = warm.find_git_dir(tmp_path / "repo" / "sub")
    assert found == (tmp_path / "repo", (tmp_path / "store" / "worktrees" / "repo").resolve())


def test_unreadable_facts_are_not_used(tmp_path: Path) -> None:
    from pytest_worktree_gates.databases import warm

    init_repo(tmp_path)
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    assert warm.recall(tmp_path, "postgres") is None  # none written
    home = tmp_path / ".git" / "worktree-gates"
    (home / "postgres").mkdir(parents=True)
    (home / "postgres.password").write_text("secret\n")
    key = warm.config_key(tmp_path / "pyproject.toml")
    same = {"root": str(tmp_path.resolve()), "git_dir": str((tmp_path / ".git").resolve())}
    for broken in ("{", '["a list"]', json.dumps(same | {"config": key, "port": "x"})):
        (home / "postgres" / "warm.json").write_text(broken)
        assert warm.recall(tmp_path, "postgres") is None


def test_a_process_looks_its_session_database_up_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_worktree_gates.databases import admin
    from pytest_worktree_gates.databases.provider import Provider

    cli(project, "db", "up")
    created = []
    create = admin.create
    monkeypatch.setattr(admin, "create", lambda *args: created.append(args) or create(*args))
    # Env export asks first, then the session fixture: one login and one CREATE check.
    provider = Provider(project)
    assert provider.session("postgres") == provider.session("postgres")
    assert len(created) == 1
