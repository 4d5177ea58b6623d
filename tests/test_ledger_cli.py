"""The gate ledger (state.py) and the CLI verbs that read and write it, in real repos.

`worktree-gates gate run` spawns a real pytest on a tiny project; every other verb runs
in-process through ``cli.main`` so that coverage measures it.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import coverage
import pytest

from pytest_worktree_gates import __version__, cli, config, git, state
from pytest_worktree_gates.errors import GatesError
from pytest_worktree_gates.gates.model import Condition, GateResult
from tests.conftest import commit_all, init_repo
from tests.conftest import git as run_git

PYPROJECT = """\
[tool.coverage.run]
source = ["pkg"]

[tool.coverage.report]
omit = ["*/generated.py"]

[tool.worktree-gates.gates.unit]
checks = []
"""

PASSING_TEST = """\
import os
from pathlib import Path

from pkg import add, mod


def test_add():
    with Path(os.environ["WTG_RUN_LOG"]).open("a") as log:
        log.write("ran\\n")
    assert mod.a(1) + mod.b(1) == 3
    assert add(1, 2) == 3
"""

FAILING_TEST = PASSING_TEST.replace("add(1, 2) == 3", "add(1, 2) == 4")

# Statements on lines 1, 2, 5, 6, 7 and 8.
MODULE = """\
def a(x):
    return x + 1


def b(x):
    if x:
        return 1
    return 2
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed tiny project with one passing test; the current directory is its root."""
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    init_repo(root)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "pkg" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "pkg" / "mod.py").write_text(MODULE)
    (root / "pkg" / "generated.py").write_text("X = 1\nY = 2\n")
    (root / "tests" / "test_pkg.py").write_text(PASSING_TEST)
    commit_all(root, "project")
    (root / ".gitignore").write_text(".coverage*\n__pycache__/\n")
    commit_all(root, "ignore coverage data and bytecode")
    monkeypatch.setenv("WTG_RUN_LOG", str(tmp_path / "runs.log"))
    monkeypatch.delenv("COVERAGE_FILE", raising=False)  # the project's data goes to its root
    monkeypatch.chdir(root)
    return root


def runs(root: Path) -> int:
    """How many times the project's test has really run."""
    log = root.parent / "runs.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def ledger_rows(root: Path) -> list[tuple[str, str, int]]:
    with state.connect(root / ".git" / "worktree-gates") as connection:
        rows = connection.execute("SELECT gate, tree, passed FROM ledger ORDER BY id").fetchall()
    return [(gate, tree, passed) for gate, tree, passed in rows]


def tree_of(root: Path) -> str:
    return run_git(root, "rev-parse", "HEAD^{tree}").strip()


def report(
    gate: str = "unit", tree: str | None = "t" * 40, exit_code: int = 0
) -> dict[str, object]:
    condition = Condition("tests", exit_code, 0, exit_code == 0, {"passed": 1})
    return GateResult(gate, exit_code, tree, (condition,)).to_json()


# --- state -------------------------------------------------------------------------------


def test_connect_creates_the_wal_database_in_the_common_dir(project: Path) -> None:
    linked = project.parent / "linked"
    run_git(project, "worktree", "add", "-q", "-b", "feature/linked", str(linked))
    repo = git.find_repo(linked)
    assert repo is not None
    with state.connect(repo.state_dir) as connection:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    assert (project / ".git" / "worktree-gates" / "state.db").is_file()
    assert not (linked / ".git").is_dir()  # a linked worktree has a .git file, not a dir
    assert mode == "wal"
    assert version == len(state.MIGRATIONS)
    with state.connect(repo.state_dir) as connection:  # reopening migrates nothing twice
        assert connection.execute("PRAGMA user_version").fetchone()[0] == version


def test_record_lookup_latest(tmp_path: Path) -> None:
    with state.connect(tmp_path / "state") as connection:
        assert state.lookup(connection, "unit", "a" * 40, "cfg") is None
        state.record(connection, report(tree="a" * 40, exit_code=1), "cfg", "wt1")
        state.record(connection, report(tree="a" * 40), "cfg", "wt1")
        state.record(connection, report(tree="b" * 40, exit_code=6), "cfg", "wt1")
        state.record(connection, report(gate="final", tree="a" * 40), "cfg", "wt2")

        verdict = state.lookup(connection, "unit", "a" * 40, "cfg")
        assert verdict is not None
        assert verdict.passed  # the latest verdict for the tree wins
        assert (verdict.gate, verdict.tree, verdict.config, verdict.worktree) == (
            "unit",
            "a" * 40,
            "cfg",
            "wt1",
        )
        assert verdict.report == report(tree="a" * 40)
        assert verdict.recorded_at > 0
        assert state.lookup(connection, "unit", "a" * 40, "other-config") is None
        assert state.lookup(connection, "final", "b" * 40, "cfg") is None

        latest = state.latest(connection, "unit", "wt1")
        assert latest is not None
        assert (latest.tree, latest.passed) == ("b" * 40, False)
        assert state.latest(connection, "unit", "wt2") is None
        final = state.latest(connection, "final", "wt2")
        assert final is not None and final.passed


def test_a_dirty_run_is_not_recorded(tmp_path: Path) -> None:
    with state.connect(tmp_path / "state") as connection:
        state.record(connection, report(tree=None), "cfg", "wt1")
        assert connection.execute("SELECT count(*) FROM ledger").fetchone()[0] == 0
        assert state.latest(connection, "unit", "wt1") is None


def test_two_connections_see_each_others_writes(tmp_path: Path) -> None:
    with (
        state.connect(tmp_path / "state") as first,
        state.connect(tmp_path / "state") as second,
    ):
        state.record(first, report(tree="a" * 40), "cfg", "wt1")
        seen = state.lookup(second, "unit", "a" * 40, "cfg")
        assert seen is not None and seen.worktree == "wt1"
        state.record(second, report(tree="a" * 40, exit_code=1), "cfg", "wt2")
        seen = state.lookup(first, "unit", "a" * 40, "cfg")
        assert seen is not None and seen.worktree == "wt2" and not seen.passed


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    with state.connect(tmp_path / "state") as connection:
        with pytest.raises(sqlite3.IntegrityError), state.transaction(connection):
            connection.execute(
                "INSERT INTO ledger (gate, tree, config, worktree, passed, exit_code, report,"
                " recorded_at) VALUES ('unit', 't', 'c', 'w', 1, 0, '{}', 0)"
            )
            connection.execute("INSERT INTO ledger (gate) VALUES ('half')")  # NOT NULL fails
        assert connection.execute("SELECT count(*) FROM ledger").fetchone()[0] == 0
        state.record(connection, report(), "cfg", "wt1")  # and the connection still works
        assert connection.execute("SELECT count(*) FROM ledger").fetchone()[0] == 1


# --- gate run ------------------------------------------------------------------------------


def test_gate_run_records_then_skips_then_reruns(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    tree = tree_of(project)
    assert cli.main(["gate", "run", "unit"]) == 0
    out = capfd.readouterr().out
    assert "1 passed" in out and f"gate unit PASSED for tree {tree[:12]}" in out
    assert runs(project) == 1
    assert ledger_rows(project) == [("unit", tree, 1)]
    with state.connect(project / ".git" / "worktree-gates") as connection:
        verdict = state.lookup(connection, "unit", tree, config.load(project).digest())
    assert verdict is not None and verdict.passed
    assert verdict.worktree == str(project / ".git")

    assert cli.main(["gate", "run", "unit"]) == 0
    out = capfd.readouterr().out
    assert out == (f"gate unit: already passed for tree {tree[:12]} (--rerun to run again)\n")
    assert runs(project) == 1  # pytest did not run
    assert len(ledger_rows(project)) == 1

    assert cli.main(["gate", "run", "--rerun", "unit"]) == 0
    assert "1 passed" in capfd.readouterr().out
    assert runs(project) == 2
    assert ledger_rows(project) == [("unit", tree, 1), ("unit", tree, 1)]


def record_pass(root: Path) -> str:
    """Vouch for the current tree in the ledger, as a passing gate run would."""
    tree = tree_of(root)
    with state.connect(root / ".git" / "worktree-gates") as connection:
        state.record(connection, report(tree=tree), config.load(root).digest(), str(root / ".git"))
    return tree


def test_rerun_given_after_the_gate_name(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The order the skip message suggests: `gate run unit --rerun`."""
    tree = record_pass(project)
    assert cli.main(["gate", "run", "unit"]) == 0
    assert f"already passed for tree {tree[:12]}" in capfd.readouterr().out
    assert runs(project) == 0

    assert cli.main(["gate", "run", "unit", "--rerun"]) == 0
    out = capfd.readouterr().out
    assert "already passed" not in out
    assert "1 passed" in out
    assert runs(project) == 1


def test_arguments_after_a_double_dash_go_to_pytest(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A narrowed run (-k) reaches pytest, and is never recorded as the gate's verdict."""
    assert cli.main(["gate", "run", "unit", "--", "-k", "no_such_test"]) == 5
    assert "no tests were selected" in capfd.readouterr().out
    assert runs(project) == 0
    assert ledger_rows(project) == []


def test_gate_run_on_a_dirty_tree_runs_and_records_nothing(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (project / "scratch.txt").write_text("not committed\n")
    assert cli.main(["gate", "run", "unit"]) == 0
    assert "(not recorded: uncommitted changes)" in capfd.readouterr().out
    assert runs(project) == 1
    assert ledger_rows(project) == []


def test_gate_run_of_an_unknown_gate(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["gate", "run", "nope"]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("worktree-gates: error: unknown gate 'nope'; configured gates: ")
    assert "final, integration, unit" in err
    assert runs(project) == 0


@pytest.mark.parametrize("verb", [["gate", "run", "unit"], ["status"], ["baseline", "update"]])
def test_verbs_outside_a_git_repo(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    verb: list[str],
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "pyproject.toml").write_text(PYPROJECT)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(outside)
    assert cli.main(verb) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert err == (
        f"worktree-gates: error: {outside} is not inside a git work tree; "
        "run this from your project\n"
    )
    assert not (outside / ".git").exists()


# --- status --------------------------------------------------------------------------------


def status(capfd: pytest.CaptureFixture[str]) -> str:
    assert cli.main(["status"]) == 0
    out: str = capfd.readouterr().out
    return out


def status_json(capfd: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    assert cli.main(["status", "--json"]) == 0
    return {item["gate"]: item for item in json.loads(capfd.readouterr().out)}


def test_status_pending_passed_stale_failed(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    tree = tree_of(project)
    assert status(capfd) == (
        f"{project}: tree {tree[:12]}\n"
        "  unit         pending  -> worktree-gates gate run unit\n"
        "  integration  pending  -> worktree-gates gate run integration\n"
        "  final        pending  -> worktree-gates gate run final\n"
    )
    assert status_json(capfd)["unit"] == {
        "gate": "unit",
        "state": "pending",
        "passed": False,
        "tree": tree,
    }

    assert cli.main(["gate", "run", "unit"]) == 0
    capfd.readouterr()
    assert "  unit         passed\n" in status(capfd)
    shown = status_json(capfd)
    assert shown["unit"]["state"] == "passed"
    assert shown["unit"]["passed"] is True
    assert shown["unit"]["exit_code"] == 0
    assert shown["unit"]["tree"] == tree
    conditions = shown["unit"]["conditions"]
    assert isinstance(conditions, list)
    assert [item["name"] for item in conditions] == ["tests", "coverage.total"]
    assert shown["final"]["state"] == "pending"

    # A new commit: the verdict belonged to the old tree.
    (project / "tests" / "test_pkg.py").write_text(FAILING_TEST)
    commit_all(project, "break the test")
    new_tree = tree_of(project)
    assert "  unit         stale  -> worktree-gates gate run unit\n" in status(capfd)
    assert status_json(capfd)["unit"] == {
        "gate": "unit",
        "state": "stale",
        "passed": False,
        "tree": new_tree,
    }

    assert cli.main(["gate", "run", "unit"]) == 1
    assert "gate unit FAILED: tests failed (exit 1)" in capfd.readouterr().out
    assert "  unit         failed  -> worktree-gates gate run unit\n" in status(capfd)
    shown = status_json(capfd)
    assert shown["unit"]["state"] == "failed"
    assert shown["unit"]["exit_code"] == 1
    assert shown["unit"]["tree"] == new_tree

    # A failed verdict is not a reason to skip: the next run runs the tests again.
    assert cli.main(["gate", "run", "unit"]) == 1
    assert "already passed" not in capfd.readouterr().out
    assert runs(project) == 3
    assert [passed for _gate, _tree, passed in ledger_rows(project)] == [1, 0, 0]


def test_status_of_a_dirty_tree(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (project / "pkg" / "mod.py").write_text(MODULE + "\n# edited\n")
    assert status(capfd).splitlines()[0] == (
        f"{project}: uncommitted changes (no verdict can be recorded)"
    )
    assert status_json(capfd)["unit"]["tree"] is None


# --- baseline update -----------------------------------------------------------------------


def measure(root: Path, executed: dict[str, set[int]], data_file: Path | None = None) -> None:
    """Write real coverage data: these lines of these files ran, nothing else did."""
    target = data_file or root / ".coverage"
    target.unlink(missing_ok=True)
    data = coverage.CoverageData(basename=str(target))
    data.add_lines({str((root / name).resolve()): lines for name, lines in executed.items()})
    data.write()


BASELINE = ".worktree-gates-baseline.json"
ALL_RAN = {"pkg/__init__.py": {1, 2}, "pkg/generated.py": {1}}


def baseline(root: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((root / BASELINE).read_text())
    return data


def test_baseline_update_writes_missing_line_counts(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    measure(project, {**ALL_RAN, "pkg/mod.py": {1, 5}})
    assert cli.main(["baseline", "update"]) == 0
    assert capfd.readouterr().out == f"{BASELINE}: created for 2 files; commit it\n"
    # generated.py is omitted by [tool.coverage.report], as `coverage report` omits it
    assert baseline(project) == {
        "version": 1,
        "files": {"pkg/__init__.py": 0, "pkg/mod.py": 4},
        "history": [],
    }


def test_baseline_update_from_real_pytest_cov_data(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["gate", "run", "unit"]) == 0
    capfd.readouterr()
    assert cli.main(["baseline", "update"]) == 0
    # the test calls b(1) only, so `return 2` is the one missing line
    assert baseline(project)["files"] == {"pkg/__init__.py": 0, "pkg/mod.py": 1}


def test_tightening_needs_no_reason(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    measure(project, {**ALL_RAN, "pkg/mod.py": {1, 5}})
    assert cli.main(["baseline", "update"]) == 0
    measure(project, {**ALL_RAN, "pkg/mod.py": {1, 2, 5, 6, 7}})
    capfd.readouterr()
    assert cli.main(["baseline", "update"]) == 0
    assert capfd.readouterr().out == f"{BASELINE}: 2 files; 1 tightened, 0 loosened\n"
    assert baseline(project)["files"] == {"pkg/__init__.py": 0, "pkg/mod.py": 1}
    assert baseline(project)["history"] == []


def test_loosening_needs_a_reason(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    measure(project, {**ALL_RAN, "pkg/mod.py": {1, 2, 5, 6, 7}})
    assert cli.main(["baseline", "update"]) == 0
    before = (project / BASELINE).read_bytes()
    measure(project, {**ALL_RAN, "pkg/mod.py": {1, 5}})
    capfd.readouterr()

    assert cli.main(["baseline", "update"]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert err == (
        "worktree-gates: error: this would allow more uncovered lines in pkg/mod.py (1 -> 4); "
        "add tests, or pass --reason 'WHY' to loosen the baseline on purpose\n"
    )
    assert (project / BASELINE).read_bytes() == before

    assert cli.main(["baseline", "update", "--reason", "legacy code moved in"]) == 0
    assert capfd.readouterr().out == f"{BASELINE}: 2 files; 0 tightened, 1 loosened\n"
    written = baseline(project)
    assert written["files"] == {"pkg/__init__.py": 0, "pkg/mod.py": 4}
    history = written["history"]
    assert isinstance(history, list) and len(history) == 1
    assert history[0]["reason"] == "legacy code moved in"
    assert history[0]["at"].endswith("Z")


def test_an_empty_baseline_still_needs_a_reason_to_loosen(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A committed baseline that allows no file anything is the strictest, not absent."""
    (project / BASELINE).write_text('{"version": 1, "files": {}, "history": []}\n')
    before = (project / BASELINE).read_bytes()
    measure(project, {**ALL_RAN, "pkg/mod.py": {1, 5}})
    assert cli.main(["baseline", "update"]) == 2
    assert "pass --reason" in capfd.readouterr().err
    assert (project / BASELINE).read_bytes() == before


def test_a_corrupt_baseline_is_refused_and_kept(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (project / BASELINE).write_text('{"files": {"pkg/mod.py": "four"}}\n')
    before = (project / BASELINE).read_bytes()
    measure(project, {**ALL_RAN, "pkg/mod.py": {1, 5}})
    assert cli.main(["baseline", "update"]) == 2
    err = capfd.readouterr().err
    assert err.startswith(f"worktree-gates: error: {project / BASELINE}: not a valid coverage")
    assert err.count("\n") == 1
    assert (project / BASELINE).read_bytes() == before


def test_baseline_update_without_coverage_data(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["baseline", "update"]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert err == (
        f"worktree-gates: error: no coverage data at {project / '.coverage'}; "
        "run `pytest --gates` first\n"
    )
    assert not (project / BASELINE).exists()


def test_baseline_update_with_another_data_file(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    elsewhere = project.parent / "cov.data"
    measure(project, {**ALL_RAN, "pkg/mod.py": {1, 2, 5, 6}}, elsewhere)
    assert cli.main(["baseline", "update", "--data-file", str(elsewhere)]) == 0
    assert baseline(project)["files"] == {"pkg/__init__.py": 0, "pkg/mod.py": 2}


def test_baseline_update_from_a_subdirectory(
    project: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every verb finds the project from a subdirectory; coverage's settings must follow."""
    measure(project, {**ALL_RAN, "pkg/mod.py": {1, 5}})
    monkeypatch.chdir(project / "pkg")
    assert cli.main(["baseline", "update"]) == 0
    assert (project / BASELINE).is_file()
    assert not (project / "pkg" / BASELINE).exists()
    assert baseline(project)["files"] == {"pkg/__init__.py": 0, "pkg/mod.py": 4}


# --- entry point ---------------------------------------------------------------------------


def test_python_dash_m_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_worktree_gates", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"worktree-gates {__version__}\n"


def test_no_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([])
    assert exited.value.code == 2
    assert "VERB" in capsys.readouterr().err


def test_a_state_database_of_another_schema_is_one_clear_error(tmp_path: Path) -> None:
    state_dir = tmp_path / "worktree-gates"
    state_dir.mkdir()
    with closing(sqlite3.connect(state_dir / "state.db")) as connection:
        connection.execute("CREATE TABLE hook_passes (x)")  # what a later migration creates
        connection.execute("PRAGMA user_version = 1")
    expected = r"state.db: cannot use the state database .*move it"
    with pytest.raises(GatesError, match=expected), state.connect(state_dir):
        pass
    with closing(sqlite3.connect(state_dir / "state.db")) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert [row[0] for row in tables] == ["hook_passes"]  # the failed migration rolled back
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 1
