"""The GitHub Actions workflow of docs/ci.md: valid YAML whose every command and setting is real.

Each command it names is parsed by the real parsers (pytest with this plugin, the
``worktree-gates`` argparse tree), and each variable it sets is read by the real config loader,
so a renamed option, verb or variable breaks this test instead of a user's CI.
"""

from __future__ import annotations

import re
from importlib.metadata import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_worktree_gates import cli
from pytest_worktree_gates.config import ENGINES, ENV_PREFIX, env_override_name, load
from tests.test_docs import run_lines, split_commands

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "github-actions.yml"
DOC = ROOT / "docs" / "ci.md"
# Service images by the engine they serve: the official images.
OFFICIAL_IMAGES = {"postgres": "postgres", "redis": "redis", "mariadb": "mysql", "mysql": "mysql"}


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def the_job() -> dict[str, Any]:
    jobs = workflow()["jobs"]
    assert len(jobs) == 1, f"expected one job, got {sorted(jobs)}"
    job: dict[str, Any] = next(iter(jobs.values()))
    return job


def commands() -> list[list[str]]:
    """Every simple command of every ``run`` step, split as the shell would (the same reading
    the docs' examples get)."""
    return [command for line in run_lines(the_job()["steps"]) for command in split_commands(line)]


def test_runs_on_pull_requests_and_in_the_merge_queue() -> None:
    loaded: dict[Any, Any] = workflow()
    triggers = loaded["on"] if "on" in loaded else loaded[True]  # YAML 1.1: `on` is true
    assert set(triggers) == {"pull_request", "merge_group"}


def test_the_doc_shows_the_file_byte_for_byte() -> None:
    text = DOC.read_text()
    block = re.search(r"## The workflow\n\n```yaml\n(.*?)```\n", text, re.S)
    assert block, "docs/ci.md has no ```yaml block under '## The workflow'"
    assert block.group(1) == WORKFLOW.read_text()


def test_the_services_are_official_images_reached_through_the_external_backend(
    tmp_path: Path,
) -> None:
    job = the_job()
    env = job["env"]
    assert env[env_override_name("databases.backend")] == "external"
    # Each variable is one the real loader honours, on a project that configures the engines.
    (tmp_path / "pyproject.toml").write_text(
        "".join(f"[tool.worktree-gates.databases.{engine}]\n" for engine in ENGINES)
    )
    plain = load(tmp_path).databases
    assert plain.backend == "auto" and all(not engine.url for engine in plain.engines)
    ours = {name: value for name, value in env.items() if name.startswith(ENV_PREFIX)}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ours.items():
            patch.setenv(name, value)
        loaded = load(tmp_path).databases
    read = {env_override_name("databases.backend"): loaded.backend}
    for engine in loaded.engines:
        read[env_override_name(f"databases.{engine.name}.url")] = engine.url
    unknown = set(ours) - set(read)
    assert not unknown, f"the config loader does not read {sorted(unknown)}"
    assert {name: read[name] for name in ours} == ours
    assert job["services"], "the workflow has no database services"
    for name, service in job["services"].items():
        image = service["image"]
        served = OFFICIAL_IMAGES.get(image.split(":")[0])
        assert served, f"service {name}: {image} is not an official database image"
        assert "--health-cmd" in service["options"], f"service {name} has no health check"
        published = [int(mapping.split(":")[0]) for mapping in service["ports"]]
        url = env[env_override_name(f"databases.{served}.url")]
        assert re.match(r"[a-z]+://", url), url
        assert f"localhost:{published[0]}/" in url or f"127.0.0.1:{published[0]}/" in url


def test_every_pytest_command_parses_with_the_plugins_options(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[project]\nname = 'app'\n")
    runs = [words for words in commands() if words[0] == "pytest"]
    assert any("--gates=final" in words for words in runs)
    for words in runs:
        # A bad option is a UsageError here. --no-cov: parsing a gate's options would start
        # pytest-cov's measurement, and no session would stop it.
        config = pytester.parseconfig(*words[1:], "--no-cov")
        assert config.getoption("gates") == "final"
        kinds = [report.split(":", 1)[0] for report in config.getoption("gates_report")]
        assert "markdown" in kinds


def test_every_worktree_gates_command_parses() -> None:
    runs = [words for words in commands() if words[0] == "worktree-gates"]
    assert runs, "the workflow names no worktree-gates command"
    for words in runs:
        args = cli.parse(words[1:])  # argparse exits on a bad command line
        assert callable(args.run)


def test_the_report_reaches_the_step_summary_even_after_a_failure() -> None:
    steps = the_job()["steps"]
    gate = next(i for i, step in enumerate(steps) if "--gates=final" in step.get("run", ""))
    report = re.search(r"--gates-report=markdown:(\S+)", steps[gate]["run"])
    assert report
    summary = [step for step in steps[gate + 1 :] if "$GITHUB_STEP_SUMMARY" in step.get("run", "")]
    assert summary, "no step after the gate writes to $GITHUB_STEP_SUMMARY"
    assert summary[0].get("if") == "always()"
    assert report.group(1) in summary[0]["run"]


def test_the_install_step_names_real_extras() -> None:
    extras = set(metadata("pytest-worktree-gates").get_all("Provides-Extra") or [])
    named = [
        word
        for words in commands()
        if words[:2] == ["pip", "install"]
        for word in words
        if word.startswith("pytest-worktree-gates[")
    ]
    assert named
    for word in named:
        wanted = set(word.split("[", 1)[1].rstrip("]").split(","))
        assert wanted <= extras, f"{word}: unknown extras {sorted(wanted - extras)}"
