"""``worktree-gates db up|down|status|url|gc``: this worktree's database servers."""

from __future__ import annotations

import argparse
import time
from typing import Any

from pytest_worktree_gates.cli.context import here
from pytest_worktree_gates.errors import GatesError


def add_parser(verbs: Any) -> None:
    db = verbs.add_parser(
        "db",
        help="manage this worktree's database servers",
        description="Start, stop, inspect and clean up the database servers of this worktree "
        "([tool.worktree-gates.databases]).",
    )
    actions = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("up", help="start (or adopt) every configured engine").set_defaults(run=up)
    down_parser = actions.add_parser("down", help="stop this worktree's servers")
    down_parser.add_argument(
        "--purge", action="store_true", help="also delete their data, volumes and port leases"
    )
    down_parser.set_defaults(run=down)
    actions.add_parser("status", help="engine, backend, port, state and age").set_defaults(
        run=status
    )
    url_parser = actions.add_parser("url", help="print the URL of ENGINE (with its password)")
    url_parser.add_argument("engine", metavar="ENGINE", help="postgres, mysql or redis")
    url_parser.set_defaults(run=url)
    actions.add_parser(
        "gc",
        help="remove servers, data and leases of this repo's worktrees that no longer exist",
    ).set_defaults(run=gc)


def _place() -> Any:
    from pytest_worktree_gates.databases.service import Place

    context = here()
    if not context.config.databases.engines:
        raise GatesError(
            "no database engine is configured; add [tool.worktree-gates.databases.postgres] "
            "(or mysql, redis) to pyproject.toml"
        )
    return Place(context.config, context.repo)


def up(args: argparse.Namespace) -> int:
    from pytest_worktree_gates.databases import service

    place = _place()
    for engine in place.config.databases.engines:
        server = service.ensure(place, engine.name)
        # The URL would show the password: only `db url` prints it.
        print(f"{engine.name}: {server.backend} on {server.host}:{server.port} ready")
    return 0


def down(args: argparse.Namespace) -> int:
    from pytest_worktree_gates.databases import service

    stopped = service.down(_place(), args.purge)
    verb = "stopped and purged" if args.purge else "stopped"
    print(f"{verb}: {', '.join(stopped)}")
    return 0


def age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def status(args: argparse.Namespace) -> int:
    from pytest_worktree_gates.databases import service

    rows = service.status(_place())
    table = [("engine", "backend", "port", "state", "age")]
    now = time.time()
    for row in rows:
        shown_age = age(now - row.since) if row.since else "-"
        port = str(row.port) if row.port else "-"
        table.append((row.engine, row.backend, port, row.state, shown_age))
    widths = [max(len(line[column]) for line in table) for column in range(5)]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    return 0


def url(args: argparse.Namespace) -> int:
    from pytest_worktree_gates.databases.provider import Provider

    place = _place()
    place.config.databases.engine(args.engine)  # an unconfigured engine is a clear error
    source = Provider(place.config.root, _place=place)
    print(source.session(args.engine).url)
    return 0


def gc(args: argparse.Namespace) -> int:
    from pytest_worktree_gates.databases import service

    removed = service.gc(_place())
    for item in removed:
        print(f"removed {item}")
    print(f"gc: {len(removed)} orphan(s) removed")
    return 0
