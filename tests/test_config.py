from __future__ import annotations

from pathlib import Path

import pytest

from pytest_worktree_gates.config import ConfigError, load, parse


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(text)
    return tmp_path


def test_defaults_are_the_seed_workflow(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    config = load(write(tmp_path, "[project]\nname = 'x'\n"))
    assert config.main_branch == "main"
    assert config.worktrees_dir == ".worktrees"
    assert config.branch_prefix == "feature/"
    assert config.coverage.fail_under == 80
    assert config.coverage.source == ("app",)
    assert config.gate("unit").tests == "not integration"
    assert config.gate("unit").checks == ("lint", "types")
    assert set(config.checks) == {"format", "lint", "types"}
    assert config.checks["format"].fixes
    assert config.variants["hotfix"].gates == ("unit", "final")


def test_coverage_source_defaults_to_coverage_run_source(tmp_path: Path) -> None:
    config = load(write(tmp_path, "[tool.coverage.run]\nsource = ['svc']\n"))
    assert config.coverage.source == ("svc",)


def test_src_layout_packages_are_the_default_source(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("")
    assert load(write(tmp_path, "")).coverage.source == ("pkg",)


def test_full_config_is_read(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            """
[tool.worktree-gates]
main-branch = "trunk"
variant = "hotfix"
[tool.worktree-gates.coverage]
source = ["app"]
fail-under = 85.5
diff-fail-under = 90
branch = true
paths = { "app/core/*" = 95, "app/*" = 70 }
[tool.worktree-gates.checks]
preset = "classic"
lint = { run = "ruff check --select E {files}" }
audit = { run = "pip-audit", stage = "manual", files = ["requirements*.txt"] }
[tool.worktree-gates.gates.unit]
checks = ["lint", "audit"]
[tool.worktree-gates.gates.smoke]
tests = "smoke"
[tool.worktree-gates.variants.standard]
gates = ["unit", "smoke"]
approvals = 2
[tool.worktree-gates.databases]
backend = "local"
[tool.worktree-gates.databases.postgres]
image = "postgres:16"
setup = ["alembic upgrade head"]
env = { DATABASE_URL = "{url}" }
""",
        )
    )
    assert config.main_branch == "trunk"
    assert config.coverage.fail_under == 85.5
    assert config.coverage.paths == (("app/*", 70.0), ("app/core/*", 95.0))
    assert set(config.checks) == {"format", "imports", "lint", "types", "audit"}
    assert config.checks["lint"].run == "ruff check --select E {files}"
    assert config.checks["format"].run == "black {files}"
    assert config.checks["audit"].files == ("requirements*.txt",)
    assert config.gate("unit").checks == ("lint", "audit")
    assert config.gate("unit").coverage  # inherited from the default unit gate
    assert config.gate("smoke").tests == "smoke"
    assert config.variants["standard"].approvals == 2
    assert config.databases.backend == "local"
    assert config.databases.engines[0].env == (("DATABASE_URL", "{url}"),)


def test_config_hash_follows_the_config(tmp_path: Path) -> None:
    first = parse({}, None, tmp_path).digest()
    assert first == parse({}, None, tmp_path).digest()
    changed = {"tool": {"worktree-gates": {"coverage": {"fail-under": 81}}}}
    assert parse(changed, None, tmp_path).digest() != first


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.worktree-gates\n", "invalid TOML"),
        (
            "[tool.worktree-gates]\nmain_branch = 'x'\n",
            "tool.worktree-gates.main_branch: unknown key",
        ),
        (
            "[tool.worktree-gates.coverage]\nfail-under = 'high'\n",
            "tool.worktree-gates.coverage.fail-under: expected a number from 0 to 100, got 'high'",
        ),
        (
            "[tool.worktree-gates.coverage]\nfail-under = 120\n",
            "tool.worktree-gates.coverage.fail-under: expected a number from 0 to 100, got 120",
        ),
        (
            "[tool.worktree-gates.coverage]\ndiff-fail-under = -1\n",
            "coverage.diff-fail-under: expected a number from 0 to 100",
        ),
        (
            "[tool.worktree-gates.coverage]\nbranch = 1\n",
            "coverage.branch: expected true or false, got 1",
        ),
        (
            "[tool.worktree-gates.coverage.paths]\n'app/*' = true\n",
            "coverage.paths.app/*: expected a number from 0 to 100, got true",
        ),
        (
            "[tool.worktree-gates.gates.unit]\nchecks = ['lint', 'speling']\n",
            "gates.unit.checks: unknown check 'speling'",
        ),
        (
            "[tool.worktree-gates.variants.standard]\ngates = ['unit', 'nope']\n",
            "variants.standard.gates: unknown gate 'nope'",
        ),
        (
            "[tool.worktree-gates]\nvariant = 'fast'\n",
            "tool.worktree-gates.variant: expected one of",
        ),
        (
            "[tool.worktree-gates.checks.extra]\nfixes = true\n",
            "checks.extra.run: missing: a new check needs a command",
        ),
        ("[tool.worktree-gates.checks]\npreset = 'fancy'\n", "checks.preset: expected one of ruff"),
        (
            "[tool.worktree-gates.checks.lint]\nstage = 'pre-merge'\n",
            "checks.lint.stage: expected one of pre-commit, pre-push, manual",
        ),
        (
            "[tool.worktree-gates.gates]\nunit = 3\n",
            "tool.worktree-gates.gates.unit: must be a table",
        ),
        (
            "[tool.worktree-gates.databases.oracle]\nimage = 'x'\n",
            "databases.oracle: unknown engine; expected one of postgres, mysql, redis",
        ),
        (
            "[tool.worktree-gates.checks.lint]\nrun = 'ruff check {paths}'\n",
            "checks.lint.run: unknown placeholder {paths}; only {files} is known",
        ),
        (
            "[tool.worktree-gates.checks.lint]\nrun = 'ruff check {files'\n",
            "checks.lint.run: unbalanced { or } in 'ruff check {files'",
        ),
        (
            "[tool.worktree-gates.gates.unit]\ntests = ['a']\n",
            "gates.unit.tests: expected a -m marker expression, got ['a']",
        ),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text) / "pyproject.toml"
    with pytest.raises(ConfigError) as raised:
        load(tmp_path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)
    assert "120.0" not in str(raised.value)  # a number is shown as the user wrote it
    assert "\n" not in str(raised.value)


def test_preset_none_leaves_the_built_in_gates_without_checks(tmp_path: Path) -> None:
    config = load(write(tmp_path, "[tool.worktree-gates.checks]\npreset = 'none'\n"))
    assert config.checks == {}
    assert config.gate("unit").checks == ()
    assert config.gate("final").checks == ()


def test_a_new_variant_must_list_its_gates(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"variants\.quick\.gates: missing"):
        load(write(tmp_path, "[tool.worktree-gates.variants.quick]\napprovals = 0\n"))


def test_unknown_gate_lists_the_configured_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown gate 'nope'; configured gates: final, "):
        load(write(tmp_path, "")).gate("nope")


def test_worktree_setup_commands_are_read_and_do_not_change_the_digest(tmp_path: Path) -> None:
    plain = load(write(tmp_path, ""))
    assert plain.worktree.setup == ()
    config = load(
        write(tmp_path, '[tool.worktree-gates.worktree]\nsetup = ["python -m venv .venv"]\n')
    )
    assert config.worktree.setup == ("python -m venv .venv",)
    # How a worktree is set up does not change what its tests prove: verdicts stay valid.
    assert config.digest() == plain.digest()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('setup = "make"', "tool.worktree-gates.worktree.setup: expected a list of strings"),
        ("other = 1", "tool.worktree-gates.worktree.other: unknown key"),
    ],
)
def test_bad_worktree_section(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(write(tmp_path, f"[tool.worktree-gates.worktree]\n{text}\n"))


def test_unknown_variant_lists_the_configured_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown variant 'x'; configured variants: full, "):
        load(write(tmp_path, "")).variant_named("x")


ENGINES_TOML = """
[tool.worktree-gates.databases.postgres]
url = "postgresql://dev@localhost/"
[tool.worktree-gates.databases.redis]
"""


def test_the_environment_points_the_databases_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI job switches to its service containers without editing pyproject.toml."""
    monkeypatch.setenv("WORKTREE_GATES_DATABASES_BACKEND", "external")
    monkeypatch.setenv("WORKTREE_GATES_DATABASES_POSTGRES_URL", "postgresql://ci:pw@db:5432/")
    monkeypatch.setenv("WORKTREE_GATES_DATABASES_REDIS_URL", "redis://localhost:6379/")
    monkeypatch.setenv("WORKTREE_GATES_DATABASES_MYSQL_URL", "mysql://root:pw@localhost/")
    databases = load(write(tmp_path, ENGINES_TOML)).databases
    assert databases.backend == "external"
    assert databases.engine("postgres").url == "postgresql://ci:pw@db:5432/"
    assert databases.engine("redis").url == "redis://localhost:6379/"
    # Only configured engines are provisioned: a URL for another engine adds none.
    assert [engine.name for engine in databases.engines] == ["postgres", "redis"]


def test_without_the_environment_the_file_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKTREE_GATES_DATABASES_BACKEND", "")  # empty counts as unset
    monkeypatch.delenv("WORKTREE_GATES_DATABASES_POSTGRES_URL", raising=False)
    databases = load(write(tmp_path, ENGINES_TOML)).databases
    assert databases.backend == "auto"
    assert databases.engine("postgres").url == "postgresql://dev@localhost/"


def test_a_bad_backend_in_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKTREE_GATES_DATABASES_BACKEND", "k8s")
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, ENGINES_TOML))
    assert str(raised.value) == (
        "WORKTREE_GATES_DATABASES_BACKEND: expected one of auto, docker, local, external, "
        "got 'k8s' (it overrides tool.worktree-gates.databases.backend)"
    )


SERVE = "[tool.worktree-gates.gates.integration.serve]\n"


def test_serve_table_is_read_with_its_defaults(tmp_path: Path) -> None:
    plain = load(write(tmp_path, ""))
    assert plain.gate("integration").serve is None
    config = load(
        write(
            tmp_path,
            SERVE + "command = 'uvicorn app.main:app --port {port}'\n"
            "env = { APP_URL = 'http://127.0.0.1:{port}', MODE = 'test' }\n",
        )
    )
    serve = config.gate("integration").serve
    assert serve is not None
    assert serve.command == "uvicorn app.main:app --port {port}"
    assert (serve.health, serve.timeout) == ("/health", 30.0)
    assert serve.env == (("APP_URL", "http://127.0.0.1:{port}"), ("MODE", "test"))
    assert config.gate("integration").tests == "integration"  # the rest of the gate is kept
    assert config.digest() != plain.digest()  # a different app makes a different verdict


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "command = 'uvicorn app:app --port {prot}'",
            "gates.integration.serve.command: unknown placeholder {prot}; known: {port}",
        ),
        (
            "command = 'x {port}'\nenv = { URL = 'http://{host}:{port}' }",
            "gates.integration.serve.env.URL: unknown placeholder {host}; known: {port}",
        ),
        ("command = 'x --port {port'", "serve.command: unbalanced { or } in 'x --port {port'"),
        ("health = '/up'", "gates.integration.serve.command: missing: serving the app needs"),
        ("command = ''", "serve.command: expected a command line, got an empty string"),
        ("command = 'x \"{port}'", "serve.command: cannot split 'x \"{port}': No closing"),
        ("command = 'x'\nhealth = 'health'", "serve.health: expected a path starting with /"),
        ("command = 'x'\ntimeout = 0", "serve.timeout: expected a number of seconds above 0"),
        ("command = 'x'\ntimeout = true", "serve.timeout: expected a number of seconds, got true"),
        ("command = 'x'\nport = 8000", "gates.integration.serve.port: unknown key"),
    ],
)
def test_bad_serve_table_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, SERVE + text + "\n") / "pyproject.toml"
    with pytest.raises(ConfigError) as raised:
        load(tmp_path)
    assert str(raised.value).startswith(f"{path}: tool.worktree-gates.")
    assert message in str(raised.value)
