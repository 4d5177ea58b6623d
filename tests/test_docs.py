"""The docs cannot drift: every verb, option, config key, fixture and exit code is documented.

Nothing here is a hand-written list of what exists. The CLI is the argparse tree the package
builds, the config keys are what the real loader reads, the fixtures and pytest options are what
pytest reports with the plugin loaded, and the exit codes are the package's ``EXIT`` constants.
Each test names what is missing and the page it belongs in.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import pkgutil
import re
import shlex
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import pytest_worktree_gates
from pytest_worktree_gates import cli, config
from pytest_worktree_gates.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXAMPLE_LANGUAGES = ("console", "bash", "shell", "sh", "yaml")


# --- reading the docs ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Block:
    page: str
    language: str
    text: str


@dataclasses.dataclass(frozen=True)
class Section:
    page: str
    level: int
    heading: str
    text: str  # the heading's whole section, its subsections included
    own: str  # up to the next heading of any level


def page(name: str) -> str:
    return (DOCS / name).read_text()


def fences(name: str, lines: list[str]) -> Iterator[tuple[int, int, str]]:
    """(opening line, closing line, language) of every fenced code block of page ``name``,
    indented ones (in a list item) included. A fence left open is an error: what follows it
    would be read as code, or not at all."""
    fence, start, language = "", 0, ""
    for number, line in enumerate(lines):
        stripped = line.strip()
        opening = re.match(r"(`{3,})(\S*)", stripped)
        if not fence and opening:
            fence, start, language = opening.group(1), number, opening.group(2)
        elif fence and stripped.startswith(fence) and not stripped.strip("`"):
            yield start, number, language
            fence = ""
    assert not fence, f"docs/{name}:{start + 1}: a code fence that is never closed"


def blocks() -> Iterator[Block]:
    """Every fenced code block of every page, with its language, its indentation removed."""
    for path in sorted(DOCS.glob("*.md")):
        lines = path.read_text().splitlines()
        for start, end, language in fences(path.name, lines):
            indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
            text = [line.removeprefix(indent) for line in lines[start + 1 : end]]
            yield Block(path.name, language, "\n".join(text) + "\n")


def sections(name: str) -> list[Section]:
    """The sections of a page by heading, ignoring `#` lines inside code blocks."""
    lines = page(name).splitlines()
    code = {n for start, end, _ in fences(name, lines) for n in range(start, end + 1)}
    headings = [
        (number, len(title.group(1)), title.group(2))
        for number, line in enumerate(lines)
        if number not in code and (title := re.match(r"(#+) (.*)", line))
    ]
    found = []
    for index, (number, level, heading) in enumerate(headings):
        end = next((n for n, lv, _ in headings[index + 1 :] if lv <= level), len(lines))
        own = headings[index + 1][0] if index + 1 < len(headings) else len(lines)
        text, own_text = "\n".join(lines[number:end]), "\n".join(lines[number:own])
        found.append(Section(name, level, heading, text, own_text))
    return found


def example_lines() -> list[str]:
    """Command lines shown in examples: console, shell and workflow blocks of every page."""
    found = []
    for block in blocks():
        if block.language in EXAMPLE_LANGUAGES:
            found += [line.removeprefix("$ ").strip() for line in block.text.splitlines()]
    return found


def row(text: str, first_cell: str) -> bool:
    """A table row whose first cell is ``first_cell`` in backticks (maybe with more after it)."""
    return bool(re.search(rf"^\| `{re.escape(first_cell)}(?![\w-])", text, re.M))


# --- the CLI ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verb:
    path: tuple[str, ...]  # ("db", "down")
    options: tuple[str, ...]  # ("--purge",)
    positionals: tuple[str, ...]  # ("ENGINE",)


def verbs(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Verb]:
    """Every runnable verb of the real parser, nested actions included, with its arguments."""
    options: list[str] = []
    positionals: list[str] = []
    nested = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            nested = True
            for name, child in action.choices.items():
                yield from verbs(child, (*path, name))
        elif isinstance(action, argparse._HelpAction):
            continue  # every parser has -h, --help
        elif action.option_strings:
            options.append(max(action.option_strings, key=len))
        else:
            positionals.append(str(action.metavar or action.dest.upper()))
    if not nested or options:  # a verb, or the command's own options (--version)
        yield Verb(path, tuple(options), tuple(positionals))


def verb_sections(path: tuple[str, ...]) -> list[Section]:
    """The cli.md sections whose heading names the longest prefix of the verb that has one."""
    if not path:
        return sections("cli.md")[:1]  # the command itself: the whole page
    for size in range(len(path), 0, -1):
        words = " ".join(path[:size])
        found = [
            section
            for section in sections("cli.md")
            if f" {words} " in " " + section.heading.replace("`", "") + " "
        ]
        if found:
            return found
    return []


def all_verbs() -> list[Verb]:
    return list(verbs(cli.parser()))


def test_the_cli_tree_is_found() -> None:
    paths = {verb.path for verb in all_verbs()}
    assert {("gate", "run"), ("db", "down"), ("merge",)} <= paths


@pytest.mark.parametrize("verb", all_verbs(), ids=lambda verb: " ".join(verb.path) or "-")
def test_every_verb_and_option_is_documented_with_an_example(verb: Verb) -> None:
    command = " ".join(("worktree-gates", *verb.path))
    found = verb_sections(verb.path)
    assert found, f"docs/cli.md: no section for `{command}`; add `## {command}`"
    text = "\n".join(section.text for section in found)
    examples = [line for line in example_lines() if re.search(rf"{command}(\s|$)", line)]
    missing = []
    if not examples:
        missing.append(f"`{command}` has no example (a ```console or ```bash line running it)")
    for option in verb.options:
        if option not in text:
            missing.append(f"`{command}`: option {option} is not described in its section")
        if not any(re.search(rf"{option}(\W|$)", line) for line in examples):
            missing.append(f"`{command}`: option {option} has no example")
    for positional in verb.positionals:
        if positional not in text:
            missing.append(f"`{command}`: argument {positional} is not described")
    assert not missing, "docs/cli.md:\n" + "\n".join(missing)


# --- exit codes ------------------------------------------------------------------------------


def exit_codes() -> list[tuple[str, str, int]]:
    """(module, constant, value) for every ``EXIT_*`` / ``*_EXIT`` constant of the package."""
    found = []
    for info in pkgutil.walk_packages(pytest_worktree_gates.__path__, "pytest_worktree_gates."):
        if info.name.endswith("__main__"):
            continue  # importing it runs the command
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            constant = re.fullmatch(r"EXIT_[A-Z_]+|[A-Z_]+_EXIT", name)
            if constant and type(value) is int:
                found.append((info.name, name, value))
    return found


def exit_code_page(module: str) -> str:
    """`pytest --gates` codes belong with the gates; every other code is the CLI's."""
    pytest_side = ("pytest_worktree_gates.gates", "pytest_worktree_gates.session")
    return "gates.md" if module.startswith(pytest_side) else "cli.md"


def exit_code_rows(name: str) -> str:
    """The rows of the page's exit code tables (those whose first column is `code`), and only
    those: a `| 1 |` row of another table documents no exit code."""
    tables = re.findall(r"^\| code \|.*\n\|[- |]+\|\n((?:\|.*\n)*)", page(name), re.M)
    return "".join(tables)


def test_every_exit_code_is_in_an_exit_code_table() -> None:
    codes = exit_codes()
    assert any(name == "EXIT_GATE_FAILED" for _, name, _ in codes)
    missing = []
    for module, name, value in codes:
        where = exit_code_page(module)
        if not re.search(rf"^\| {value} \|", exit_code_rows(where), re.M):
            missing.append(f"docs/{where}: exit code {value} ({module}.{name}) has no table row")
    assert not missing, "\n".join(missing)


# --- pytest options and fixtures -------------------------------------------------------------


def help_options(pytester: pytest.Pytester, *args: str) -> set[str]:
    output = pytester.runpytest_subprocess("--help", *args).stdout.str()
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", output))


def test_every_pytest_option_of_the_plugin_is_documented(pytester: pytest.Pytester) -> None:
    ours = help_options(pytester) - help_options(pytester, "-p", "no:worktree_gates")
    assert "--gates" in ours
    text = page("gates.md")
    examples = [line for line in example_lines() if line.startswith("pytest ")]
    missing = []
    for option in sorted(ours):
        if not row(text, option):
            missing.append(f"docs/gates.md: option {option} has no row in the options table")
        if not any(re.search(rf"{option}(\W|$)", line) for line in examples):
            missing.append(f"docs/: option {option} has no example `pytest ... {option}`")
    assert not missing, "\n".join(missing)


def plugin_fixtures(pytester: pytest.Pytester) -> dict[str, str]:
    """Fixture name -> scope, for every fixture a module of this package defines."""
    output = pytester.runpytest_subprocess("--fixtures", "-v").stdout.lines
    found, ours = {}, False
    for line in output:
        header = re.match(r"-+ fixtures defined from (\S+) -+", line)
        if header:
            ours = header.group(1).startswith("pytest_worktree_gates")
        elif ours and (fixture := re.match(r"(\w+)(?: \[(\w+) scope\])? -- ", line)):
            found[fixture.group(1)] = fixture.group(2) or "function"
    return found


def test_every_fixture_is_documented_with_its_scope_and_an_example(
    pytester: pytest.Pytester,
) -> None:
    fixtures = plugin_fixtures(pytester)
    assert "worktree_postgres" in fixtures
    text = page("fixtures.md")
    python = "\n".join(block.text for block in blocks() if block.language == "python")
    missing = []
    for name, scope in sorted(fixtures.items()):
        line = re.search(rf"^\| `{name}` \|.*$", text, re.M)
        if not line:
            missing.append(f"docs/fixtures.md: fixture {name} has no row in the table")
        elif f"| {scope} |" not in line.group(0):
            missing.append(f"docs/fixtures.md: fixture {name} is {scope}-scoped; its row says not")
        if not re.search(rf"def \w+\([^)]*\b{name}\b", python):
            missing.append(f"docs/: fixture {name} has no ```python example that requests it")
    assert not missing, "\n".join(missing)


# --- configuration keys ----------------------------------------------------------------------

Key = tuple[str, ...]  # ("databases", "postgres", "url"), without "tool.worktree-gates"


@dataclasses.dataclass
class Reading:
    """What the real loader asked of one document: each key, whether set, whether a table."""

    asked: dict[Key, bool] = dataclasses.field(default_factory=dict)  # key -> set in document
    tables: set[Key] = dataclasses.field(default_factory=set)
    error: str = ""


def read(document: dict[str, Any], tmp_path: Path) -> Reading:
    """Load ``document`` with the real loader, noting every key it looks up."""
    reading = Reading()
    where: dict[str, Key] = {config.SECTION: ()}
    real_get, real_sub = config._Reader.get, config._Reader.sub

    def note(reader: Any, name: str) -> Key:
        key = (*where[reader.dotted], name)
        reading.asked[key] = reading.asked.get(key, False) or name in reader.table
        return key

    def get(reader: Any, name: str, *args: Any) -> Any:
        note(reader, name)
        return real_get(reader, name, *args)

    def sub(reader: Any, name: str) -> Any:
        key = note(reader, name)
        where[reader.key(name)] = key
        reading.tables.add(key)
        return real_sub(reader, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config._Reader, "get", get)
        patch.setattr(config._Reader, "sub", sub)
        try:
            config.parse(document, None, tmp_path, environ={})
        except ConfigError as error:
            reading.error = str(error)
    return reading


def section_of(document: dict[str, Any]) -> dict[str, Any]:
    table: dict[str, Any] = document.get("tool", {}).get("worktree-gates", {})
    return table


def present(table: dict[str, Any], prefix: Key = ()) -> Iterator[Key]:
    for name, value in table.items():
        yield (*prefix, name)
        if isinstance(value, dict):
            yield from present(value, (*prefix, name))


def edited(document: dict[str, Any], key: Key, new_name: str | None) -> dict[str, Any]:
    """A copy of ``document`` with the last name of ``key`` changed, or the key removed."""
    copy = {"tool": {"worktree-gates": _copy(section_of(document))}}
    table = section_of(copy)
    for name in key[:-1]:
        table = table[name]
    value = table.pop(key[-1])
    if new_name is not None:
        table[new_name] = value
    return copy


def own_name(document: dict[str, Any], key: Key, tmp_path: Path) -> bool:
    """Whether the last name of ``key`` is the user's (a gate, a glob), not one the loader knows.

    The loader asks for its own keys even when they are absent, and for the user's names only
    when they are there, whatever they are.
    """
    other = key[-1] + "x"
    if key in read(edited(document, key, None), tmp_path).asked:
        return False
    return (*key[:-1], other) in read(edited(document, key, other), tmp_path).asked


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def placeholders() -> set[Key]:
    """Tables the docs write with a placeholder, such as ``databases.<engine>``."""
    found = set()
    for header in re.findall(r"\[tool\.worktree-gates\.([\w.<>-]+)\]", page("configuration.md")):
        parts = tuple(header.split("."))
        for index, part in enumerate(parts):
            if part.startswith("<"):
                found.add(parts[: index + 1])
    return found


def general(key: Key, own_names: set[Key], families: set[Key], tables: set[Key]) -> Key:
    """``key`` with the user's own names (a gate, a glob, an engine) replaced by ``*``."""
    out: list[str] = []
    for index, name in enumerate(key):
        family = key[: index + 1] in tables and any(
            len(pattern) == index + 1 and _matches(pattern[:-1], tuple(out)) for pattern in families
        )
        out.append("*" if key[: index + 1] in own_names or family else name)
    return tuple(out)


def _matches(pattern: Key, key: Key) -> bool:
    return len(pattern) == len(key) and all(
        p == k or p.startswith("<") or k == "*" for p, k in zip(pattern, key, strict=True)
    )


def toml_examples() -> list[tuple[Block, dict[str, Any]]]:
    found = []
    for block in blocks():
        if block.language == "toml" and "[tool.worktree-gates" in block.text:
            found.append((block, tomllib.loads(block.text)))
    return found


@dataclasses.dataclass
class Keys:
    asked: set[Key]  # every key the loader reads, generalized
    shown: set[Key]  # those a docs example sets
    tables: set[Key]
    broken: list[str]  # docs examples the loader refuses


def config_keys(tmp_path: Path) -> Keys:
    families = placeholders()
    keys = Keys(set(), set(), set(), [])
    documents: list[tuple[Block | None, dict[str, Any]]] = [(None, {}), *toml_examples()]
    for block, document in documents:
        reading = read(document, tmp_path)
        if reading.error and block is not None:
            keys.broken.append(f"docs/{block.page}: a TOML example does not load: {reading.error}")
        own = {key for key in present(section_of(document)) if own_name(document, key, tmp_path)}
        for key, is_set in reading.asked.items():
            shown = general(key, own, families, reading.tables)
            keys.asked.add(shown)
            if is_set:
                keys.shown.add(shown)
            if key in reading.tables:
                keys.tables.add(shown)
    return keys


def header_pattern(key: Key, whole: bool) -> str:
    parts = "".join(rf"\.({re.escape(n)}|<[\w-]+>)" if n != "*" else r"\.[^.\]]+" for n in key)
    return r"\[tool\.worktree-gates" + parts + (r"\]" if whole else r"[.\]]")


def test_every_config_key_is_documented_with_an_example(tmp_path: Path) -> None:
    keys = config_keys(tmp_path)
    assert ("databases", "*", "url") in keys.asked  # the walk found the nested tables
    reference = sections("configuration.md")
    missing = list(keys.broken)
    for key in sorted(keys.asked):
        if key[-1] == "*":
            continue  # a name of the user's own: its table's row documents it
        dotted = ".".join(key)
        parent = re.compile(header_pattern(key[:-1], whole=True))
        described = any(
            parent.search(section.own) and row(section.own, key[-1]) for section in reference
        )
        if key in keys.tables:
            described = described or bool(
                re.search(header_pattern(key, False), page("configuration.md"))
            )
        if not described:
            missing.append(
                f"docs/configuration.md: key {dotted} has no row in the section of "
                f"[tool.worktree-gates{'.' if key[:-1] else ''}{'.'.join(key[:-1])}]"
            )
        if key not in keys.shown:
            missing.append(f"docs/: key {dotted} is set in no ```toml example")
    assert not missing, "\n".join(missing)


# Dataclass fields that are not keys of their own table, and why.
NOT_KEYS = {
    "Config.path": "the file the configuration came from",
    "Config.root": "the project root",
    "DatabasesConfig.engines": "one table per engine: databases.<engine>",
    "DatabasesConfig.ports": "read from the key port-range",
}


def dataclass_fields(kind: Any = config.Config) -> Iterator[tuple[str, str]]:
    """(class, field) of every dataclass reachable from Config, nested ones included."""
    seen: set[Any] = set()
    todo = [kind]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        hints = typing.get_type_hints(current)
        for field in dataclasses.fields(current):
            yield current.__name__, field.name
            todo += [t for t in _types(hints[field.name]) if dataclasses.is_dataclass(t)]


def _types(hint: Any) -> Iterator[Any]:
    yield hint
    for argument in typing.get_args(hint):
        yield from _types(argument)


def test_every_config_dataclass_field_is_a_documented_key(tmp_path: Path) -> None:
    names = {key[-1] for key in config_keys(tmp_path).shown}
    missing = [
        f"config.py: {kind}.{field} is set by no ```toml example in docs/ "
        f"(document its key in docs/configuration.md, with an example)"
        for kind, field in dataclass_fields()
        if field != "name"  # a table's own key: a gate's, a check's, an engine's name
        and f"{kind}.{field}" not in NOT_KEYS
        and field.replace("_", "-") not in names
    ]
    assert not missing, "\n".join(missing)


def test_the_index_links_every_page() -> None:
    index = page("index.md")
    unlinked = [
        path.name
        for path in sorted(DOCS.glob("*.md"))
        if path.name != "index.md" and f"]({path.name})" not in index
    ]
    assert not unlinked, f"docs/index.md: link {unlinked} from the page table"


# --- every command the docs show -------------------------------------------------------------


def shell_lines(block: Block) -> Iterator[str]:
    """The command lines of a block: console prompts, shell lines, workflow ``run`` steps."""
    if block.language == "yaml":
        yield from run_lines(yaml.safe_load(block.text))
        return
    for line in block.text.replace("\\\n", " ").splitlines():
        if block.language != "console":
            yield line
        elif line.startswith("$ "):
            yield line[2:]


def run_lines(node: Any) -> Iterator[str]:
    """The lines of every ``run`` step in a GitHub Actions workflow, or any part of one."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                # A GitHub expression is replaced before the shell sees the line.
                yield from re.sub(r"\$\{\{[^}]*\}\}", "/tmp/runner", value).splitlines()
            else:
                yield from run_lines(value)
    elif isinstance(node, list):
        for item in node:
            yield from run_lines(item)


def split_commands(line: str) -> Iterator[list[str]]:
    """The simple commands of a shell line, without redirections or ``VAR=value`` prefixes."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    command: list[str] = []
    redirected = False
    for token in [*lexer, ";"]:
        if redirected:
            redirected = False  # the file a redirection names is not an argument
        elif token in (">", ">>", "<"):
            redirected = True
        elif token.strip("|&;()"):
            command.append(token)
        else:  # `|`, `&&`, `;`, ...: the end of a command
            while command and re.match(r"[A-Z_]+=", command[0]):
                command.pop(0)
            if command:
                yield command
            command = []


def doc_commands(program: str) -> list[tuple[str, list[str]]]:
    """(page, words after ``program``) of every ``program`` command in an example."""
    return [
        (block.page, command[1:])
        for block in blocks()
        if block.language in EXAMPLE_LANGUAGES
        for line in shell_lines(block)
        for command in split_commands(line)
        if command[0] == program
    ]


def test_every_worktree_gates_command_in_the_docs_parses() -> None:
    commands = doc_commands("worktree-gates")
    assert any(words[:2] == ["gate", "run"] for _, words in commands)
    wrong = []
    for where, words in commands:
        try:
            cli.parse(words)
        except SystemExit as stopped:
            if stopped.code != 0:  # --help and --version exit 0
                wrong.append(f"docs/{where}: `worktree-gates {shlex.join(words)}` does not parse")
    assert not wrong, "\n".join(wrong)


# Parsing a gate's options would start pytest-cov's measurement, and no session would stop it.
NO_COVERAGE = "--no-cov"


def test_every_pytest_command_in_the_docs_parses(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[project]\nname = 'app'\n")
    commands = doc_commands("pytest")
    # `worktree-gates gate run GATE -- ARGS` runs `pytest --gates=GATE ARGS`.
    for where, words in doc_commands("worktree-gates"):
        if words[:2] == ["gate", "run"] and "--" in words:
            commands.append((where, [f"--gates={words[2]}", *words[words.index("--") + 1 :]]))
    assert any(words[:1] == ["--gates"] for _, words in commands)
    wrong = []
    for where, words in commands:
        try:
            pytester.parseconfig(*words, NO_COVERAGE)
        except pytest.UsageError as error:
            wrong.append(f"docs/{where}: `pytest {shlex.join(words)}` does not parse: {error}")
    assert not wrong, "\n".join(wrong)
