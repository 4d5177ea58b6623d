"""``worktree-gates serve [--gate NAME]``: run a gate's app in the foreground, for manual work.

Same port lease, same command and same env (the databases' exported variables included) as
``pytest --gates=NAME`` uses. The app stays in the terminal's process group, so Ctrl-C and the
terminal (a debugger's prompt, say) reach it as if it had been started by hand.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from pytest_worktree_gates.cli.context import here

INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C
TERMINATED = 143  # ... and by SIGTERM


def add_parser(verbs: Any) -> None:
    serve = verbs.add_parser(
        "serve",
        help="run a gate's app in the foreground on this worktree's port",
        description="Start the command of [tool.worktree-gates.gates.NAME.serve] on this "
        "worktree's leased port, with the databases' env exported, print its URL and wait until "
        "it exits or Ctrl-C.",
    )
    serve.add_argument(
        "--gate",
        default="integration",
        metavar="NAME",
        help="the gate whose serve table to use (default: integration)",
    )
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pytest_worktree_gates import serving
    from pytest_worktree_gates.databases.provider import Provider
    from pytest_worktree_gates.databases.service import Place

    context = here()
    gate = context.config.gate(args.gate)
    serve = serving.serve_of(gate)
    serving.require_program(gate, context.config.root)
    # Only the engines whose table has `env`, as `pytest` exports them (none: nothing starts).
    place = Place(context.config, context.repo)
    os.environ.update(Provider(context.config.root, _place=place).exported())
    reservation = serving.reserve(context.config, context.repo)
    try:
        running = serving.start(serve, reservation, context.config.root, own_group=False)
    except OSError as error:
        reservation.release()
        print(f"worktree-gates: error: could not start {serve.command!r}: {error}", file=sys.stderr)
        return 2
    print(f"worktree-gates: serving {running.command} at {reservation.url}", flush=True)
    # `kill PID` of this command stops the app as Ctrl-C does, instead of orphaning it.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(TERMINATED))
    try:
        facts = serving.wait_healthy(running, serve)
        reservation.release()  # the app has its port (or never will): others may lease now
        if facts.healthy:
            seconds = facts.seconds or 0.0
            print(f"worktree-gates: healthy in {seconds:.2f} s: {reservation.url}", flush=True)
        elif running.process.poll() is None:
            print(f"worktree-gates: {facts.error}; still waiting", file=sys.stderr, flush=True)
        return running.process.wait()
    except KeyboardInterrupt:
        return INTERRUPTED
    finally:
        reservation.release()
        serving.stop(running)
