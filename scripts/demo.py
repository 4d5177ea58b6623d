"""The worktree workflow end to end, on a fresh repository made from examples/fastapi-service.

Run it through ./scripts/demo, which sets up .venv (and, as root, the database engines) first.
Each step runs the commands a developer types, shows their output, checks that they did what
they should, and is timed. Exit status: 0 the whole workflow went through; 1 a gate stopped the
change (what --broken asks for), with a message that says what to do; 2 a step misbehaved in any
other way. Everything the demo created is removed at the end, unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fastapi-service"
COPY_IGNORING = (".venv", "__pycache__", ".*_cache", ".coverage*", ".env.worktree")
FEATURE, OTHER = "add-items", "add-tags"
# Stand-ins for the images the example's databases use (the plugin's defaults), honouring the
# same environment contract, that ./scripts/services builds where no registry is reachable.
LOCAL_IMAGES = {
    "postgres": "worktree-gates-test/postgres:15",
    "redis": "worktree-gates-test/redis:7",
}
WIDTH = 100
BOLD, DIM, RED, GREEN, RESET = "\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[0m"


class Misbehaved(Exception):
    """A step did not do what it should: the demo, the example or the plugin is broken."""


class GateStopped(Exception):
    """A gate refused the change: what a broken change should meet."""

    def __init__(self, command: str, code: int, report: dict[str, Any], output: str):
        super().__init__(f"{command} exited {code}")
        self.command, self.code = command, code
        self.report, self.output = report, output


@dataclass
class Step:
    number: int
    short: str
    seconds: float = 0.0
    result: str = ""


@dataclass
class Demo:
    work: Path
    repo: Path
    broken: str | None
    keep: bool
    color: bool
    steps: list[Step] = field(default_factory=list)
    # `new OTHER` runs in the background during step 6: its outcome and its wall time.
    other: subprocess.CompletedProcess[str] | None = None
    other_seconds: float = 0.0

    def paint(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.color else text

    def say(self, text: str = "", indent: str = "  ") -> None:
        print(textwrap.indent(text, indent) if text else "", flush=True)

    def explain(self, text: str) -> None:
        wrapped = textwrap.fill(text, WIDTH, initial_indent="  ", subsequent_indent="  ")
        print(self.paint(DIM, wrapped), flush=True)

    def worktree(self, name: str) -> Path:
        return self.repo / ".worktrees" / name

    def run(self, command: str, cwd: Path, expect: int | None = 0, show: bool = True) -> str:
        """``command`` through the shell, as a developer would type it; its output."""
        return self.outcome(command, cwd, expect, show).stdout

    def outcome(
        self, command: str, cwd: Path, expect: int | None = 0, show: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if show:
            where = self.repo.name + ("" if cwd == self.repo else f"/{cwd.relative_to(self.repo)}")
            self.say(f"{self.paint(BOLD, where + '$')} {command}")
        process = subprocess.Popen(
            command,
            shell=True,
            cwd=cwd,
            text=True,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if show:
                self.say(line.rstrip(), "    ")
        code = process.wait()
        output = "".join(lines)
        if expect is not None and code != expect:
            if not show:
                self.say(output, "    ")
            raise Misbehaved(f"`{command}` exited {code}, expected {expect}")
        return subprocess.CompletedProcess(command, code, output)

    def step(self, short: str, title: str, why: str, body: Callable[[Demo], str]) -> None:
        current = Step(len(self.steps) + 1, short)
        self.steps.append(current)
        print(f"\n{self.paint(BOLD, f'[{current.number}/{len(STEPS)}] {title}')}", flush=True)
        self.explain(why)
        start = time.perf_counter()
        try:
            current.result = body(self)
        finally:
            current.seconds = time.perf_counter() - start
        self.say(self.paint(GREEN, f"ok in {current.seconds:.1f} s: {current.result}"))

    def gate(self, gate: str, cwd: Path) -> dict[str, Any]:
        """``pytest --gates[=GATE]`` in ``cwd``: its recorded report, or GateStopped."""
        command = "pytest --gates" if gate == "unit" else f"pytest --gates={gate}"
        done = self.outcome(command, cwd, expect=None)
        if done.returncode not in (0, 1, 6):  # not a verdict: pytest itself could not run
            raise Misbehaved(f"`{command}` exited {done.returncode}; see its output above")
        report = recorded_report(self, cwd, gate)
        if done.returncode != 0:
            raise GateStopped(command, done.returncode, report, done.stdout)
        if not report.get("passed"):
            raise Misbehaved(f"`{command}` exited 0, but the ledger has no pass for this tree")
        return report


def environment() -> dict[str, str]:
    """No personal git config, an identity for the commits, output in order, and the
    example's own database settings (no machine-wide override of its backend or servers)."""
    dropped = ("GIT_", "COVERAGE_", "WORKTREE_GATES_DATABASES_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        GIT_AUTHOR_NAME="Dana Demo",
        GIT_AUTHOR_EMAIL="dana@example.invalid",
        GIT_COMMITTER_NAME="Dana Demo",
        GIT_COMMITTER_EMAIL="dana@example.invalid",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def recorded_report(demo: Demo, cwd: Path, gate: str) -> dict[str, Any]:
    """The ledger's report of ``gate`` for the tree in ``cwd`` (`worktree-gates status --json`)."""
    for report in json.loads(demo.run("worktree-gates status --json", cwd, show=False)):
        if report["gate"] == gate:
            return dict(report)
    raise Misbehaved(f"`worktree-gates status --json` lists no gate {gate!r}")


def env_file(worktree: Path) -> dict[str, str]:
    lines = (worktree / ".env.worktree").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def count_items(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url, connect_timeout=10) as connection:
        row = connection.execute("SELECT count(*) FROM items").fetchone()
    return int(row[0]) if row else 0


def edit(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of ``old``: the edit a developer makes by hand."""
    text = path.read_text()
    if text.count(old) != 1:
        raise Misbehaved(f"{path.name} has not exactly one {old.strip()!r}; update the demo")
    path.write_text(text.replace(old, new))


# --- the changes --------------------------------------------------------------------------------

IMPORT_ANCHOR = "from typing import Annotated\n"
BATCH_CODE = '''

@app.post("/items/batch", status_code=status.HTTP_201_CREATED)
def create_items(payload: list[ItemIn], session: SessionDep) -> list[ItemOut]:
    """Add several items at once: all of them, or none."""
    repeated = sorted(name for name, count in Counter(i.name for i in payload).items() if count > 1)
    if repeated:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"repeated names: {', '.join(repeated)}")
    items = [NEW_ITEM for entry in payload]
    session.add_all(items)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "a name is taken; none added") from None
    return [ItemOut.model_validate(item) for item in items]
'''
NEW_ITEM = "Item(**entry.model_dump())"
BUGGY_NEW_ITEM = "Item(name=entry.name, price_cents=entry.price_cents)"  # forgets the quantity
# Single quotes on purpose: the commit hook's formatter turns them into double quotes.
BATCH_TESTS = """

def test_a_batch_adds_every_item(client: TestClient) -> None:
    batch = [{'name': 'mug', 'price_cents': 900}, {'name': 'cup', 'price_cents': 7, 'quantity': 4}]
    assert client.post('/items/batch', json=batch).status_code == 201
    added = {item['name']: item['quantity'] for item in client.get('/items').json()}
    assert added == {'mug': 0, 'cup': 4}


def test_a_batch_with_a_taken_name_adds_nothing(client: TestClient) -> None:
    make(client, 'mug')
    batch = [{'name': 'cup', 'price_cents': 700}, {'name': 'mug', 'price_cents': 900}]
    assert client.post('/items/batch', json=batch).status_code == 409
    assert [item['name'] for item in client.get('/items').json()] == ['mug']


def test_a_batch_may_not_repeat_a_name(client: TestClient) -> None:
    batch = [{'name': 'cup', 'price_cents': 700}, {'name': 'cup', 'price_cents': 800}]
    response = client.post('/items/batch', json=batch)
    assert (response.status_code, response.json()['detail']) == (400, 'repeated names: cup')
"""


# --- the steps ----------------------------------------------------------------------------------


def prepare(demo: Demo) -> None:
    """A fresh repository holding a copy of the example, its databases' images chosen."""
    shutil.copytree(EXAMPLE, demo.repo, ignore=shutil.ignore_patterns(*COPY_IGNORING))
    for note in use_local_images(demo.repo / "pyproject.toml"):
        demo.explain(note)
    demo.run("git init -q -b main && git add -A && git commit -q -m 'Items service'", demo.repo)


def use_local_images(pyproject: Path) -> list[str]:
    """Point the docker backend at the locally built images where the official ones are absent.

    Where no registry is reachable (CI here), `docker pull postgres:16` fails. Where the
    official images are present, or can be pulled, this changes nothing.
    """
    from pytest_worktree_gates.config import DEFAULT_IMAGES
    from pytest_worktree_gates.databases import docker
    from pytest_worktree_gates.errors import GatesError

    try:
        client = docker.engine()  # the probe the backend `auto` makes
    except GatesError:
        return []  # no Docker engine: `auto` chooses local servers
    notes, text = [], pyproject.read_text()
    for engine, local in LOCAL_IMAGES.items():
        official = DEFAULT_IMAGES[engine]
        if not has_image(client, official) and has_image(client, local):
            header = f"[tool.worktree-gates.databases.{engine}]\n"
            text = text.replace(header, f'{header}image = "{local}"\n')
            notes.append(f"{official} is not here: this copy uses {local}")
    pyproject.write_text(text)
    client.close()
    if notes:
        notes.append("(built by ./scripts/services with the official images' environment contract)")
    return notes


def has_image(client: Any, name: str) -> bool:
    import docker.errors

    try:
        client.images.get(name)
    except docker.errors.APIError:  # ImageNotFound among them
        return False
    return True


def step_init(demo: Demo) -> str:
    if "pre-commit: installed" not in demo.run("worktree-gates init", demo.repo):
        raise Misbehaved("init did not install the pre-commit hook")
    demo.run("git add .pre-commit-config.yaml && git commit -q -m 'Set up the hooks'", demo.repo)
    return "git hooks installed, .pre-commit-config.yaml committed"


def step_new(demo: Demo) -> str:
    out = demo.run(
        f'worktree-gates new {FEATURE} --description "add several items at once"', demo.repo
    )
    env = env_file(demo.worktree(FEATURE))
    if not {"DATABASE_URL", "REDIS_URL"} <= env.keys():
        raise Misbehaved(".env.worktree lacks DATABASE_URL or REDIS_URL")
    demo.run("worktree-gates db status", demo.worktree(FEATURE))
    backend = re.search(r"databases use the (\w+) backend", out)
    return (
        f"{backend.group(1) if backend else 'chosen'} backend: postgres :"
        f"{env['WTG_POSTGRES_PORT']}, redis :{env['WTG_REDIS_PORT']}, database migrated"
    )


def step_commit(demo: Demo) -> str:
    tree = demo.worktree(FEATURE)
    api, tests = tree / "service" / "api.py", tree / "tests" / "test_api.py"
    edit(api, IMPORT_ANCHOR, "from collections import Counter\n" + IMPORT_ANCHOR)
    new_item = BUGGY_NEW_ITEM if demo.broken == "test" else NEW_ITEM
    api.write_text(api.read_text() + BATCH_CODE.replace("NEW_ITEM", new_item))
    if demo.broken == "coverage":
        demo.explain("The change adds POST /items/batch to service/api.py, and forgets its tests.")
        files = "service/api.py"
    else:
        demo.explain("The change adds POST /items/batch to service/api.py and three tests.")
        tests.write_text(tests.read_text() + BATCH_TESTS)
        files = "service/api.py tests/test_api.py"
    out = demo.run(f"git add {files} && git commit -m 'Add several items at once'", tree)
    if demo.run("git status --porcelain", tree, show=False).strip():
        raise Misbehaved("the worktree is not clean after the commit")
    if demo.broken != "coverage" and "'mug'" in demo.run(
        "git show HEAD:tests/test_api.py", tree, show=False
    ):
        raise Misbehaved("the commit hook did not format the staged test file")
    fixed = "test file formatted and restaged" if "restaged" in out else "nothing to fix"
    return f"hooks: {fixed}, lint clean"


def step_unit(demo: Demo) -> str:
    report = demo.gate("unit", demo.worktree(FEATURE))
    if demo.broken:
        raise Misbehaved(f"--broken={demo.broken}: the unit gate should have stopped this change")
    return summarize(report)


def step_approve(demo: Demo) -> str:
    out = demo.run(f'worktree-gates approve {FEATURE} --by alice --note "tested"', demo.repo)
    tree = re.search(r"at tree (\w+)", out)
    return f"alice approved tree {tree.group(1) if tree else '?'}"


def step_integration(demo: Demo) -> str:
    """The integration gate in the feature worktree, while a second worktree is created."""

    def create() -> None:
        start = time.perf_counter()
        command = f'worktree-gates new {OTHER} --description "tag items"'
        demo.other = demo.outcome(command, demo.repo, expect=None, show=False)
        demo.other_seconds = time.perf_counter() - start

    demo.explain(f"Meanwhile, in the background: worktree-gates new {OTHER} (step 7).")
    background = threading.Thread(target=create)
    background.start()
    try:
        report = demo.gate("integration", demo.worktree(FEATURE))
    finally:
        background.join()
    return summarize(report) + ", over HTTP"


def step_second(demo: Demo) -> str:
    done = demo.other
    if done is None:
        raise Misbehaved(f"`worktree-gates new {OTHER}` did not run")
    prompt = demo.paint(BOLD, f"{demo.repo.name}$")
    demo.say(f"{prompt} worktree-gates new {OTHER}   # ran during step 6")
    demo.say(done.stdout.rstrip(), "    ")
    if done.returncode != 0:
        raise Misbehaved(f"`worktree-gates new {OTHER}` exited {done.returncode}")
    rows = []
    for name in (FEATURE, OTHER):
        env = env_file(demo.worktree(name))
        items = count_items(env["DATABASE_URL"])
        rows.append((name, env["WTG_POSTGRES_PORT"], env["WTG_REDIS_PORT"], items))
    demo.say(f"\n{'worktree':<10}  {'postgres':>8}  {'redis':>6}  items in its own database")
    for name, postgres, redis, items in rows:
        demo.say(f"{name:<10}  {postgres:>8}  {redis:>6}  {items}")
    (_, pg1, redis1, items1), (_, pg2, redis2, items2) = rows
    if {pg1, redis1} & {pg2, redis2}:
        raise Misbehaved("the two worktrees share a port")
    if items1 < 1 or items2 != 0:
        raise Misbehaved(f"expected items in {FEATURE}'s database only, got {items1} and {items2}")
    return f"took {demo.other_seconds:.1f} s in step 6; ports {pg2}/{redis2}; 0 items vs {items1}"


def step_merge(demo: Demo) -> str:
    api = demo.repo / "service" / "api.py"
    demo.explain("On main, a colleague logs cache misses: a new import next to the branch's.")
    edit(api, IMPORT_ANCHOR, "import logging\n" + IMPORT_ANCHOR)
    edit(
        api,
        'app = FastAPI(title="items")\n',
        'app = FastAPI(title="items")\nlogger = logging.getLogger(__name__)\n',
    )
    miss = "    found = ItemOut.model_validate(_item_or_404(session, item_id))\n"
    edit(api, miss, f'    logger.info("cache miss for item %s", item_id)\n{miss}')
    demo.run("git commit -q -am 'Log cache misses'", demo.repo)
    command = f"worktree-gates merge {FEATURE} --keep"
    done = demo.outcome(command, demo.repo, expect=None)
    if done.returncode == 1:  # the final gate failed on the merged tree
        report = recorded_report(demo, demo.worktree(FEATURE), "final")
        raise GateStopped(command, 1, report, done.stdout)
    if done.returncode != 0:
        raise Misbehaved(f"`{command}` exited {done.returncode}")
    if "resolved service/api.py automatically" not in done.stdout:
        raise Misbehaved("merge did not resolve the import conflict in service/api.py")
    if "import logging\nfrom collections import Counter\n" not in api.read_text():
        raise Misbehaved("main's service/api.py lacks the sorted union of both sides' imports")
    return "import conflict in service/api.py resolved; final gate passed"


def step_finish(demo: Demo) -> str:
    main = demo.run("git rev-parse main", demo.repo, show=False).strip()
    tip = demo.run("git rev-parse HEAD", demo.worktree(FEATURE), show=False).strip()
    if main != tip:
        raise Misbehaved(f"main is at {main[:12]}, not at the commit that passed ({tip[:12]})")
    demo.explain(
        f"main was fast-forwarded to {main[:12]}, the merged commit the final gate ran on."
    )
    demo.run("worktree-gates status", demo.repo)
    if not recorded_report(demo, demo.repo, "final").get("passed"):
        raise Misbehaved("the ledger has no passing final gate for main's tree")
    demo.run(f"worktree-gates cleanup {FEATURE}", demo.repo)
    if demo.worktree(FEATURE).exists():
        raise Misbehaved(f"cleanup left {demo.worktree(FEATURE)}")
    return f"main -> {main[:12]}; {FEATURE} and its databases removed"


STEPS: list[tuple[str, str, str, Callable[[Demo], str]]] = [
    ("init", "worktree-gates init",
     "Once per repository: the gate config is checked, the pre-commit config and the git hooks "
     "are added.", step_init),
    (f"new {FEATURE}", f"worktree-gates new {FEATURE}: branch, worktree, ports, databases",
     "The feature gets its own worktree with its own PostgreSQL and Redis (backend auto: Docker "
     "where an engine answers, else local servers); `alembic upgrade head` migrates them.",
     step_new),
    ("commit via hooks", "A change with a test, committed through the hooks",
     "The pre-commit hook formats and lints the staged files and restages what it fixed.",
     step_commit),
    ("unit gate", "The unit gate: pytest --gates",
     "Tests not marked integration (on fresh clones of a migrated template database), coverage "
     ">= 80 % and >= 90 % of the changed lines, format, lint and types. The verdict is recorded "
     "for this exact tree.", step_unit),
    ("approve", f"Review: worktree-gates approve {FEATURE}",
     "An approval is bound to the reviewed tree: a later commit makes it stale.", step_approve),
    ("integration gate", "The integration gate: pytest --gates=integration",
     "The gate serves the app with uvicorn on this worktree's own port and databases (its "
     "serve table); the tests drive it over HTTP.", step_integration),
    ("second worktree", f"A second worktree, {OTHER}, created concurrently",
     "Its own ports and its own data: what the integration tests wrote is not there.",
     step_second),
    ("merge", f"Main moves on; worktree-gates merge {FEATURE}",
     "merge brings main in: a conflict only in imports is resolved (the union, sorted as ruff "
     "sorts it); then the final gate runs on the merged tree.", step_merge),
    ("final + cleanup", f"Final gate, fast-forward of main, worktree-gates cleanup {FEATURE}",
     "main moved by fast-forward to exactly the tree that passed the final gate; cleanup removes "
     "the databases, the ports, the worktree and the merged branch.", step_finish),
]  # fmt: skip


def summarize(report: dict[str, Any]) -> str:
    """A gate's report in one short line."""
    by_name = {c["name"]: c for c in report.get("conditions", [])}
    parts = []
    if "tests" in by_name:
        parts.append(f"{by_name['tests']['details'].get('passed', '?')} passed")
    if isinstance(by_name.get("serve.health", {}).get("actual"), (int, float)):
        parts.append(f"app healthy in {by_name['serve.health']['actual']:.1f} s")
    for name, label in (("coverage.total", "coverage"), ("coverage.diff", "diff")):
        if name in by_name:
            parts.append(f"{label} {shown(by_name[name]['actual'])}")
    checks = [name.removeprefix("check:") for name in by_name if name.startswith("check:")]
    if checks:
        parts.append(f"{'/'.join(checks)} ok")
    return ", ".join(parts)


# --- a gate that stopped the change -------------------------------------------------------------


def teach(demo: Demo, stop: GateStopped) -> str:
    """What went wrong and what to do, for someone who meets the gates for the first time."""
    meaning = {1: "a test failed", 6: "the tests passed, but a condition of the gate failed"}
    gate = stop.report.get("gate", "?")
    lines = [
        f"The {gate} gate stopped this change at step {demo.steps[-1].number}: `{stop.command}` "
        f"exited {stop.code} ({meaning.get(stop.code, 'see its output above')}).",
    ]
    if demo.broken:
        lines.append(f"(The demo broke the change on purpose: --broken={demo.broken}.)")
    lines.append("")
    todo: list[str] = []
    for condition in [c for c in stop.report.get("conditions", []) if not c["passed"]]:
        lines += failed_condition(condition, stop, todo)
    lines += ["", f"What to do, in the worktree ({demo.worktree(FEATURE)}):"]
    todo += ["Commit the fix: git commit -am 'Fix ...'", f"Run the gate again: {stop.command}"]
    for number, text in enumerate(dict.fromkeys(todo), 1):
        lines.append(f"  {number}. {text}")
    lines += [
        "",
        f"Nothing reached main: `worktree-gates merge {FEATURE}` refuses until every gate of the "
        "worktree's variant has passed for the exact tree being merged; "
        f"`worktree-gates status {FEATURE}` shows what is left and the next command.",
    ]
    if not demo.keep:
        lines.append(
            f"This demo removes its repository now: `./scripts/demo --broken={demo.broken} --keep` "
            "keeps it, so that you can make the fix there."
            if demo.broken
            else "This demo removes its repository now: `./scripts/demo --keep` keeps it."
        )
    return "\n".join(wrapped for line in lines for wrapped in wrap(line))


def wrap(line: str) -> list[str]:
    """``line`` in lines of at most WIDTH, continued under its text (after any "N. ")."""
    indent = line[: len(line) - len(line.lstrip())]
    numbered = re.match(r"\s*\d+\. ", line)
    more = " " * len(numbered.group(0)) if numbered else indent + "  "
    return textwrap.wrap(line, WIDTH, subsequent_indent=more, break_on_hyphens=False) or [""]


def failed_condition(condition: dict[str, Any], stop: GateStopped, todo: list[str]) -> list[str]:
    name, details = condition["name"], condition.get("details", {})
    if name == "tests":
        failures = [line for line in stop.output.splitlines() if line.startswith("FAILED ")]
        todo.append(
            "Read the failure above: the assertion shows what the test expected and what came "
            "back. Fix the code (or the test, if the test is wrong)."
        )
        count = f"{details.get('failed', '?')} failed, {details.get('passed', '?')} passed"
        return [f"  tests: {count}", *(f"    {line}" for line in failures)]
    if name.startswith("coverage."):
        what = "of the changed lines are" if name == "coverage.diff" else "is"
        lines = [
            f"  {name}: {shown(condition['actual'])} {what} tested; this project asks for "
            f"{shown(condition['threshold'])} or more."
        ]
        for path, numbers in details.get("uncovered", {}).items():
            lines.append(f"    {path}: lines {spans(numbers)} are not run by any test")
        total = next((c for c in stop.report["conditions"] if c["name"] == "coverage.total"), None)
        if name == "coverage.diff" and total and total["passed"]:
            lines.append(
                f"    (the total, {shown(total['actual'])}, passes: new code must be tested too)"
            )
        todo.append(
            "Write a test that runs those lines: tests/test_api.py shows how (its `client` "
            "fixture gives the app on a fresh database)."
        )
        return lines
    if name == "serve.health":
        todo.append("Start the app by hand with `worktree-gates serve` and read what it prints.")
        return [f"  serve.health: the app did not answer: {details.get('error', 'see above')}"]
    tool = {"check:format": "ruff format .", "check:lint": "ruff check .", "check:types": "mypy"}
    if name in tool:
        todo.append(f"Run `{tool[name]}` and fix what it reports.")
    return [f"  {name}: {shown(condition['actual'])}, allowed {shown(condition['threshold'])}"]


def shown(value: object) -> str:
    return f"{value:.1f} %" if isinstance(value, float) else str(value)


def spans(numbers: Sequence[int]) -> str:
    runs: list[list[int]] = []
    for number in sorted(numbers):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


# --- main ----------------------------------------------------------------------------------------


def teardown(demo: Demo) -> None:
    """Remove every worktree with its databases, then the temporary directory."""
    if (demo.repo / ".git").is_dir():
        listed = subprocess.run(
            ["worktree-gates", "list", "--json"],
            cwd=demo.repo,
            text=True,
            capture_output=True,
            env=environment(),
            check=False,
        )
        for row in json.loads(listed.stdout or "[]"):
            subprocess.run(
                ["worktree-gates", "cleanup", row["name"], "--force"],
                cwd=demo.repo,
                capture_output=True,
                env=environment(),
                check=False,
            )
    shutil.rmtree(demo.work, ignore_errors=True)


def summary(demo: Demo, total: float) -> None:
    print(f"\n{demo.paint(BOLD, f'Summary: {len(demo.steps)} steps in {total:.1f} s')}")
    width = max(len(s.short) for s in demo.steps)
    for s in demo.steps:
        line = f"{s.number}. {s.short:<{width}}  {s.seconds:5.1f} s  {s.result}"
        demo.say(line if len(line) <= WIDTH - 2 else line[: WIDTH - 5] + "...")
    demo.say(
        "\nIn your own project: pip install pytest-worktree-gates, then worktree-gates init; "
        "the steps are\nin docs/workflow.md."
    )


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/demo", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--broken",
        choices=["test", "coverage"],
        help="commit a broken change (test: its test fails; coverage: it comes without tests) "
        "and see the unit gate stop it",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary repository and its databases"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    work = Path(tempfile.mkdtemp(prefix="wtg-demo-"))
    work.chmod(0o755)  # local servers run as an unprivileged account, which must get in
    # A name of its own: containers are named after the repository's directory.
    repo = work / f"shop-{work.name.removeprefix('wtg-demo-').lower()}"
    demo = Demo(work, repo, args.broken, args.keep, sys.stdout.isatty())
    start = time.perf_counter()
    try:
        print(demo.paint(BOLD, f"The worktree workflow on examples/fastapi-service, in {repo}"))
        prepare(demo)
        for short, title, why, body in STEPS:
            demo.step(short, title, why, body)
        print(f"\n{demo.paint(BOLD, 'What is left')}")
        demo.run("worktree-gates list", demo.repo)
        summary(demo, time.perf_counter() - start)
        return 0
    except GateStopped as stop:
        print(f"\n{demo.paint(RED, teach(demo, stop))}", flush=True)
        return 1
    except Misbehaved as error:
        where = f"step {demo.steps[-1].number}" if demo.steps else "preparing the repository"
        print(demo.paint(RED, f"\ndemo: {where} misbehaved: {error}"), flush=True)
        return 2
    finally:
        if args.keep:
            print(
                f"\nkept {repo} and its databases. When you are done, run there "
                "`worktree-gates cleanup NAME --force` for each NAME that `worktree-gates list` "
                f"shows, then `rm -rf {work}`."
            )
        else:
            teardown(demo)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
