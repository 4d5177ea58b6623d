"""Load ``[tool.worktree-gates]`` from pyproject.toml into frozen, typed dataclasses.

Every key has a default (the seed workflow of DESIGN.md), so a project with no section at all
works. Anything we do not understand is refused with one :class:`ConfigError` that names the
file, the dotted key and what is allowed: a silently ignored typo in a gate would let a bad
change through.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

from pytest_worktree_gates.errors import ConfigError
from pytest_worktree_gates.pyproject import find_pyproject, read_toml

SECTION = "tool.worktree-gates"
STAGES = ("pre-commit", "pre-push", "manual")
BACKENDS = ("auto", "docker", "local", "external")
ENGINES = ("postgres", "mysql", "redis")
NETWORKS = ("bridge", "host")
DEFAULT_IMAGES = {"postgres": "postgres:16", "mysql": "mariadb:11", "redis": "redis:7"}
DEFAULT_PORTS = (20000, 29999)
# What an engine's `env` templates may refer to; anything else is a typo caught at load time.
ENV_PLACEHOLDERS = ("url", "port", "host", "user", "password", "database")
PRESETS = ("ruff", "classic", "none")
# What a gate's `serve` command and env may refer to: the port leased for the worktree's app.
SERVE_PLACEHOLDERS = ("port",)
# Where the database servers are differs per machine, not per project: a CI job points the
# tests at its service containers without editing pyproject.toml. Named after the dotted key.
ENV_PREFIX = "WORKTREE_GATES_"


def env_override_name(dotted: str) -> str:
    """The variable that overrides ``databases.backend`` or ``databases.<engine>.url``."""
    return ENV_PREFIX + re.sub(r"[.-]", "_", dotted).upper()


@dataclass(frozen=True)
class Check:
    """A named step (formatter, linter, type checker) shared by hooks and gates."""

    name: str
    run: str
    fixes: bool = False
    stage: str = "pre-commit"
    files: tuple[str, ...] = ("*.py",)
    preload: bool = True  # a hook may run a Python tool in a fork of a server that imported it


@dataclass(frozen=True)
class ServeConfig:
    """How a gate serves the app: a command on the worktree's leased port, and its health path."""

    command: str
    health: str = "/health"
    timeout: float = 30.0  # seconds from start to the first 2xx on `health`
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Gate:
    """What one gate demands: which tests, whether coverage counts, which checks, a served app."""

    name: str
    tests: str = ""
    coverage: bool = False
    checks: tuple[str, ...] = ()
    serve: ServeConfig | None = None


@dataclass(frozen=True)
class Variant:
    """A workflow variant: the gates a merge demands and how many reviewers."""

    name: str
    gates: tuple[str, ...]
    approvals: int = 1
    architecture_note: bool = False


@dataclass(frozen=True)
class CoverageConfig:
    source: tuple[str, ...] = ()
    fail_under: float = 80.0
    diff_fail_under: float = 0.0
    branch: bool = False
    paths: tuple[tuple[str, float], ...] = ()
    baseline: str = ".worktree-gates-baseline.json"


@dataclass(frozen=True)
class EngineConfig:
    name: str
    image: str = ""
    database: str = "app"
    url: str = ""
    setup: tuple[str, ...] = ()
    fingerprint: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DatabasesConfig:
    backend: str = "auto"
    engines: tuple[EngineConfig, ...] = ()
    ports: tuple[int, int] = DEFAULT_PORTS  # inclusive range leased to worktrees
    network: str = "bridge"  # docker: publish on 127.0.0.1 (bridge) or share the host's

    def engine(self, name: str) -> EngineConfig:
        for engine in self.engines:
            if engine.name == name:
                return engine
        known = ", ".join(e.name for e in self.engines) or "none"
        raise ConfigError(
            f"database engine {name!r} is not configured (configured: {known}); "
            f"add [{SECTION}.databases.{name}] to pyproject.toml"
        )


@dataclass(frozen=True)
class WorktreeConfig:
    """What `worktree-gates new` runs in a fresh worktree, in order (a venv, an install, ...)."""

    setup: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    path: Path | None
    root: Path
    main_branch: str = "main"
    worktrees_dir: str = ".worktrees"
    branch_prefix: str = "feature/"
    variant: str = "standard"
    coverage: CoverageConfig = field(default_factory=CoverageConfig)
    checks: Mapping[str, Check] = field(default_factory=dict)
    gates: Mapping[str, Gate] = field(default_factory=dict)
    variants: Mapping[str, Variant] = field(default_factory=dict)
    databases: DatabasesConfig = field(default_factory=DatabasesConfig)
    worktree: WorktreeConfig = field(default_factory=WorktreeConfig)

    def gate(self, name: str) -> Gate:
        return _named(self.gates, "gate", name)

    def variant_named(self, name: str) -> Variant:
        return _named(self.variants, "variant", name)

    def digest(self) -> str:
        """A stable hash of everything besides the tree that can change a gate's verdict.

        The plugin's version is part of it: a new release may judge the same tree differently.
        """
        from pytest_worktree_gates import __version__

        data = dataclasses.asdict(self)
        data.pop("path")
        data.pop("root")
        data.pop("worktree")  # how a worktree is set up does not change what its tests prove
        blob = json.dumps([__version__, data], sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


T = TypeVar("T")


def _named(table: Mapping[str, T], kind: str, name: str) -> T:
    """``table[name]``, or one error listing the configured names and how to add this one."""
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise ConfigError(
            f"unknown {kind} {name!r}; configured {kind}s: {known} "
            f"(add [{SECTION}.{kind}s.{name}] to define it)"
        ) from None


PRESET_CHECKS: dict[str, dict[str, Check]] = {
    "ruff": {
        "format": Check("format", "ruff format {files}", fixes=True),
        "lint": Check("lint", "ruff check {files}"),
        "types": Check("types", "mypy {files}", stage="pre-push"),
    },
    "classic": {
        "format": Check("format", "black {files}", fixes=True),
        "imports": Check("imports", "isort {files}", fixes=True),
        "lint": Check("lint", "ruff check {files}"),
        "types": Check("types", "mypy {files}", stage="pre-push"),
    },
    "none": {},
}

DEFAULT_GATES = {
    "unit": Gate("unit", tests="not integration", coverage=True, checks=("lint", "types")),
    "integration": Gate("integration", tests="integration"),
    "final": Gate("final", tests="", coverage=True, checks=("lint", "types")),
}

DEFAULT_VARIANTS = {
    "standard": Variant("standard", ("unit", "integration", "final")),
    "full": Variant("full", ("unit", "integration", "final"), architecture_note=True),
    "hotfix": Variant("hotfix", ("unit", "final")),
}


class _Reader:
    """Pops typed values out of one TOML table and reports leftovers as unknown keys."""

    def __init__(
        self, file: Path | None, dotted: str, table: Any, environ: Mapping[str, str]
    ) -> None:
        self.file = file
        self.dotted = dotted
        self.environ = environ  # what `overridden` looks in
        if not isinstance(table, dict):
            self.fail(dotted, f"must be a table, got {_show(table)}")
        self.table: dict[str, Any] = dict(table)

    def fail(self, key: str, message: str) -> NoReturn:
        where = str(self.file) if self.file else "pyproject.toml"
        raise ConfigError(f"{where}: {key}: {message}")

    def key(self, name: str) -> str:
        return f"{self.dotted}.{name}"

    def get(self, name: str, kind: type[T] | tuple[type, ...], default: T, what: str) -> T:
        if name not in self.table:
            return default
        value = self.table.pop(name)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a threshold of `true` is a typo, not 1 %.
        if isinstance(value, bool) and bool not in kinds:
            self.fail(self.key(name), f"expected {what}, got {_show(value)}")
        if not isinstance(value, kinds):
            self.fail(self.key(name), f"expected {what}, got {_show(value)}")
        return cast(T, value)

    def percent(self, name: str, default: float) -> float:
        value = float(self.get(name, (int, float), default, "a number from 0 to 100"))
        if not 0 <= value <= 100:
            self.fail(self.key(name), f"expected a number from 0 to 100, got {_show(value)}")
        return value

    def strings(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(name, list, list(default), "a list of strings")
        if not all(isinstance(item, str) for item in value):
            self.fail(self.key(name), f"expected a list of strings, got {_show(value)}")
        return tuple(value)

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.get(name, str, default, "one of " + ", ".join(allowed))
        if value not in allowed:
            self.fail(self.key(name), f"expected one of {', '.join(allowed)}, got {_show(value)}")
        return value

    def overridden(self, name: str, value: str, allowed: tuple[str, ...] = ()) -> str:
        """``value`` (read from the file), or the environment's non-empty override of ``name``,
        which must be one of ``allowed`` when given."""
        variable = env_override_name(self.key(name).removeprefix(SECTION + "."))
        override = self.environ.get(variable, "")
        if not override:
            return value
        if allowed and override not in allowed:
            raise ConfigError(
                f"{variable}: expected one of {', '.join(allowed)}, got {override!r} "
                f"(it overrides {self.key(name)})"
            )
        return override

    def sub(self, name: str) -> _Reader:
        return _Reader(self.file, self.key(name), self.table.pop(name, {}), self.environ)

    def done(self) -> None:
        for name in self.table:
            self.fail(self.key(name), "unknown key")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def load(start: Path) -> Config:
    """Find and load the configuration that applies to ``start`` (a directory)."""
    path = find_pyproject(start.resolve())
    if path is None:
        return parse({}, None, start.resolve())
    return parse(read_toml(path), path, path.parent)


def parse(
    document: dict[str, Any],
    path: Path | None,
    root: Path,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """The configuration in ``document``, with the environment's database overrides applied."""
    section = document.get("tool", {}).get("worktree-gates", {})
    top = _Reader(path, SECTION, section, os.environ if environ is None else environ)
    main_branch = top.get("main-branch", str, "main", "a branch name")
    worktrees_dir = top.get("worktrees-dir", str, ".worktrees", "a directory path")
    branch_prefix = top.get("branch-prefix", str, "feature/", "a branch name prefix")
    variant = top.get("variant", str, "standard", "a variant name")
    coverage = _coverage(top.sub("coverage"), document, root)
    checks = _checks(top.sub("checks"))
    gates = _gates(top.sub("gates"), checks)
    variants = _variants(top.sub("variants"), gates)
    databases = _databases(top.sub("databases"))
    worktree_table = top.sub("worktree")
    worktree = WorktreeConfig(setup=worktree_table.strings("setup", ()))
    worktree_table.done()
    top.done()
    if variant not in variants:
        top.fail(top.key("variant"), f"expected one of {', '.join(variants)}, got {variant!r}")
    return Config(
        path=path,
        root=root,
        main_branch=main_branch,
        worktrees_dir=worktrees_dir,
        branch_prefix=branch_prefix,
        variant=variant,
        coverage=coverage,
        checks=checks,
        gates=gates,
        variants=variants,
        databases=databases,
        worktree=worktree,
    )


def _coverage(reader: _Reader, document: dict[str, Any], root: Path) -> CoverageConfig:
    source = reader.strings("source", ()) or _default_source(document, root)
    fail_under = reader.percent("fail-under", 80.0)
    diff_fail_under = reader.percent("diff-fail-under", 0.0)
    branch = reader.get("branch", bool, False, "true or false")
    paths_reader = reader.sub("paths")
    paths = tuple(
        (glob, paths_reader.percent(glob, 0.0)) for glob in sorted(dict(paths_reader.table))
    )
    baseline = reader.get("baseline", str, ".worktree-gates-baseline.json", "a file path")
    reader.done()
    return CoverageConfig(source, fail_under, diff_fail_under, branch, paths, baseline)


def _default_source(document: dict[str, Any], root: Path) -> tuple[str, ...]:
    """[tool.coverage.run] source, else the project's top-level packages."""
    run = document.get("tool", {}).get("coverage", {}).get("run", {})
    source = run.get("source") if isinstance(run, dict) else None
    if isinstance(source, list) and all(isinstance(item, str) for item in source):
        return tuple(source)
    base = root / "src" if (root / "src").is_dir() else root
    skip = {"tests", "test", "docs", "examples", "bench", "scripts"}
    packages = sorted(
        child.name
        for child in base.iterdir()
        if child.is_dir() and (child / "__init__.py").is_file() and child.name not in skip
    )
    return tuple(packages)


def _checks(reader: _Reader) -> dict[str, Check]:
    preset = reader.choice("preset", "ruff", PRESETS)
    checks = dict(PRESET_CHECKS[preset])
    for name in sorted(dict(reader.table)):
        step = reader.sub(name)
        base = checks.get(name)
        if base is None and "run" not in step.table:
            step.fail(step.key("run"), "missing: a new check needs a command to run")
        base = base or Check(name, "")
        run = step.get("run", str, base.run, "a command line")
        try:
            fields = {part[1] for part in string.Formatter().parse(run) if part[1] is not None}
        except ValueError:
            step.fail(step.key("run"), f"unbalanced {{ or }} in {run!r}; only {{files}} is known")
        if fields - {"files"}:
            unknown = ", ".join(f"{{{name}}}" for name in sorted(fields - {"files"}))
            step.fail(step.key("run"), f"unknown placeholder {unknown}; only {{files}} is known")
        checks[name] = Check(
            name=name,
            run=run,
            fixes=step.get("fixes", bool, base.fixes, "true or false"),
            stage=step.choice("stage", base.stage, STAGES),
            files=step.strings("files", base.files),
            preload=step.get("preload", bool, base.preload, "true or false"),
        )
        step.done()
    reader.done()
    return checks


def _gates(reader: _Reader, checks: Mapping[str, Check]) -> dict[str, Gate]:
    # A built-in gate asks only for the checks that exist: with preset = "none" it has none.
    gates = {
        name: dataclasses.replace(gate, checks=tuple(c for c in gate.checks if c in checks))
        for name, gate in DEFAULT_GATES.items()
    }
    for name in sorted(dict(reader.table)):
        table = reader.sub(name)
        base = gates.get(name, Gate(name))
        chosen = table.strings("checks", base.checks)
        for check in chosen:
            if check not in checks:
                known = ", ".join(sorted(checks)) or "none"
                table.fail(table.key("checks"), f"unknown check {check!r}; defined checks: {known}")
        gates[name] = Gate(
            name=name,
            tests=table.get("tests", str, base.tests, "a -m marker expression"),
            coverage=table.get("coverage", bool, base.coverage, "true or false"),
            checks=chosen,
            serve=_serve(table.sub("serve")) if "serve" in table.table else base.serve,
        )
        table.done()
    reader.done()
    return gates


def _serve(reader: _Reader) -> ServeConfig:
    if "command" not in reader.table:
        reader.fail(reader.key("command"), "missing: serving the app needs a command to run")
    command = _template(
        reader,
        "command",
        "a command line such as 'uvicorn app.main:app --port {port}'",
        SERVE_PLACEHOLDERS,
    )
    try:
        words = shlex.split(command)
    except ValueError as error:
        reader.fail(reader.key("command"), f"cannot split {command!r}: {error}")
    if not words:
        reader.fail(reader.key("command"), "expected a command line, got an empty string")
    health = reader.get("health", str, "/health", "a path such as '/health'")
    if not health.startswith("/"):
        reader.fail(reader.key("health"), f"expected a path starting with /, got {health!r}")
    timeout = float(reader.get("timeout", (int, float), 30.0, "a number of seconds"))
    if not timeout > 0:
        reader.fail(
            reader.key("timeout"), f"expected a number of seconds above 0, got {_show(timeout)}"
        )
    env = reader.sub("env")
    what = "a template such as 'http://127.0.0.1:{port}'"
    pairs = tuple((key, _template(env, key, what, SERVE_PLACEHOLDERS)) for key in sorted(env.table))
    env.done()
    reader.done()
    return ServeConfig(command, health, timeout, pairs)


def _variants(reader: _Reader, gates: Mapping[str, Gate]) -> dict[str, Variant]:
    variants = dict(DEFAULT_VARIANTS)
    for name in sorted(dict(reader.table)):
        table = reader.sub(name)
        base = variants.get(name)
        if base is None and "gates" not in table.table:
            table.fail(table.key("gates"), "missing: a new variant must list the gates it demands")
        base = base or Variant(name, ())
        chosen = table.strings("gates", base.gates)
        for gate in chosen:
            if gate not in gates:
                known = ", ".join(sorted(gates))
                table.fail(table.key("gates"), f"unknown gate {gate!r}; defined gates: {known}")
        approvals = table.get("approvals", int, base.approvals, "a whole number of reviewers")
        if approvals < 0:
            table.fail(table.key("approvals"), f"expected 0 or more, got {approvals}")
        note = table.get("architecture-note", bool, base.architecture_note, "true or false")
        variants[name] = Variant(name, chosen, approvals, note)
        table.done()
    reader.done()
    return variants


def _databases(reader: _Reader) -> DatabasesConfig:
    backend = reader.overridden("backend", reader.choice("backend", "auto", BACKENDS), BACKENDS)
    ports = _port_range(reader)
    network = reader.choice("network", "bridge", NETWORKS)
    engines = []
    for name in sorted(dict(reader.table)):
        if name not in ENGINES:
            reader.fail(reader.key(name), f"unknown engine; expected one of {', '.join(ENGINES)}")
        table = reader.sub(name)
        env = table.sub("env")
        pairs = tuple((key, _env_template(env, key)) for key in sorted(env.table))
        database = table.get("database", str, "app", "a database name")
        if not _IDENTIFIER.fullmatch(database):
            table.fail(
                table.key("database"),
                f"expected letters, digits and _ (at most 40, not starting with a digit), "
                f"got {database!r}",
            )
        engines.append(
            EngineConfig(
                name=name,
                image=table.get("image", str, DEFAULT_IMAGES[name], "an image reference"),
                database=database,
                url=table.overridden("url", table.get("url", str, "", "a server URL")),
                setup=table.strings("setup", ()),
                fingerprint=table.strings("fingerprint", ()),
                env=pairs,
            )
        )
        table.done()
    reader.done()
    return DatabasesConfig(backend, tuple(engines), ports, network)


# Database names become SQL identifiers and container names: keep them boring.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def _port_range(reader: _Reader) -> tuple[int, int]:
    value = reader.get("port-range", list, list(DEFAULT_PORTS), "[LOW, HIGH]")
    ok = len(value) == 2 and all(type(item) is int for item in value)
    if not ok or not 1024 <= value[0] <= value[1] <= 65535:
        reader.fail(
            reader.key("port-range"),
            f"expected [LOW, HIGH] with 1024 <= LOW <= HIGH <= 65535, got {_show(value)}",
        )
    return value[0], value[1]


def _env_template(env: _Reader, key: str) -> str:
    return _template(env, key, 'a template such as "{url}"', ENV_PLACEHOLDERS)


def _template(reader: _Reader, key: str, what: str, known: tuple[str, ...]) -> str:
    """A string whose ``{placeholders}`` are all ``known``; a typo is an error naming the key."""
    template = reader.get(key, str, "", what)
    allowed = ", ".join(f"{{{name}}}" for name in known)
    try:
        fields = {part[1] for part in string.Formatter().parse(template) if part[1] is not None}
    except ValueError:
        reader.fail(reader.key(key), f"unbalanced {{ or }} in {template!r}; known: {allowed}")
    unknown = sorted(fields - set(known))
    if unknown:
        shown = ", ".join(f"{{{name}}}" for name in unknown)
        reader.fail(reader.key(key), f"unknown placeholder {shown}; known: {allowed}")
    return template
