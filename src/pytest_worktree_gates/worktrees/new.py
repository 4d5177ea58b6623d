"""``new``: a worktree with its own branch, ports, databases and environment file.

Everything that can be checked is checked before anything is created, so bad input changes
nothing. The registry row is written first (state "creating") and removed again if the worktree
cannot be added, so a failure before the worktree exists leaves nothing behind; after that, a
failure keeps the worktree for inspection and marks it "failed".
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_worktree_gates import config as config_module
from pytest_worktree_gates import faults, git, state
from pytest_worktree_gates.config import Config
from pytest_worktree_gates.errors import GatesError, GitError
from pytest_worktree_gates.worktrees import facts, names, registry

ENV_FILE = ".env.worktree"
# Kept out of `git status` in every worktree: the worktrees themselves and their env files.
EXCLUDES = ("/.worktrees/", ENV_FILE)


@dataclass(frozen=True)
class Request:
    name: str
    base: str
    variant: str
    description: str
    databases: bool


def setup_log(git_dir: Path) -> Path:
    return git_dir / "worktree-gates" / "setup.log"


def ensure_excluded(common_dir: Path, worktrees_dir: str) -> None:
    exclude = common_dir / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    text = exclude.read_text() if exclude.exists() else ""
    wanted = [f"/{worktrees_dir.strip('/')}/", ENV_FILE]
    missing = [line for line in wanted if line not in text.splitlines()]
    if missing:
        prefix = "" if not text or text.endswith("\n") else "\n"
        exclude.write_text(text + prefix + "\n".join(missing) + "\n")


def validate(repo: git.Repo, config: Config, request: Request) -> tuple[Path, str, str]:
    """(path, branch, base commit), or the one error that says what is wrong; nothing changes."""
    names.check_name(request.name)
    config.variant_named(request.variant)
    primary = facts.primary_root(repo.root)
    path = primary / config.worktrees_dir / request.name
    branch = names.branch_for(config.branch_prefix, request.name)
    try:
        git.run(["check-ref-format", f"refs/heads/{branch}"], repo.root)
    except GitError:
        raise GatesError(
            f"{branch!r} is not a valid branch name; choose another worktree name"
        ) from None
    try:
        base = git.resolve_commit(repo.root, request.base)
    except GitError:
        raise GatesError(
            f"base {request.base!r} is not a branch or commit of this repo; check it with "
            "`git branch -a`, or pass --base REF"
        ) from None
    if facts.rev(repo.root, f"refs/heads/{branch}"):
        raise GatesError(f"branch {branch} already exists; choose another name")
    if path.exists() or path.is_symlink():
        raise GatesError(f"{path} already exists; choose another name or remove it")
    with state.connect(repo.state_dir) as db:
        found = registry.find(db, request.name)
        if found is not None and found.state == registry.CREATING:
            # A `new` killed before its worktree existed: nothing of it is left but this row.
            registry.remove(db, request.name, "leftover of an interrupted `new`")
        elif found is not None:
            raise GatesError(
                f"worktree {request.name} is already registered; see `worktree-gates list` "
                f"or remove it with `worktree-gates cleanup {request.name}`"
            )
    return path, branch, base


def create(repo: git.Repo, config: Config, request: Request) -> registry.Worktree:
    path, branch, base = validate(repo, config, request)
    ensure_excluded(repo.common_dir, config.worktrees_dir)
    git_dir = repo.common_dir / "worktrees" / request.name
    item = registry.Worktree(
        request.name, branch, path, git_dir, request.variant, request.description,
        registry.CREATING, time.time(),
    )  # fmt: skip
    with state.connect(repo.state_dir) as db:
        registry.add(db, item)
    try:
        git.run(["worktree", "add", "--quiet", "-b", branch, str(path), base], repo.root)
    except BaseException:
        with state.connect(repo.state_dir) as db:
            registry.remove(db, request.name, "worktree add failed")
        raise
    faults.checkpoint("worktree-added")
    here = git.find_repo(path)
    if here is None:  # pragma: no cover - git just created it
        raise GatesError(f"{path} is not a git worktree after `git worktree add`")
    item = dataclasses.replace(item, git_dir=here.git_dir)
    with state.connect(repo.state_dir) as db:
        registry.set_git_dir(db, item.name, here.git_dir)
    try:
        own = config_module.load(path)
        write_env_file(path / ENV_FILE, provision(own, here, request.databases))
        run_setup(own, here)
    except GatesError as error:
        with state.connect(repo.state_dir) as db:
            registry.set_state(db, item.name, registry.FAILED, str(error))
        raise GatesError(
            f"{error}\nthe worktree is kept at {path} for inspection, marked failed; remove "
            f"it with `worktree-gates cleanup {item.name} --force`"
        ) from None
    with state.connect(repo.state_dir) as db:
        registry.set_state(db, item.name, registry.READY)
    return item


def provision(config: Config, repo: git.Repo, databases: bool) -> dict[str, str]:
    """Lease a port per engine and, unless told not to, start the servers; the env to export."""
    from pytest_worktree_gates.databases import ports
    from pytest_worktree_gates.databases.provider import Provider
    from pytest_worktree_gates.databases.service import Place

    env: dict[str, str] = {}
    place = Place(config, repo)
    for engine in config.databases.engines:
        key = f"WTG_{engine.name.upper()}"
        if not databases:
            with state.connect(repo.state_dir) as db:
                port = ports.lease(db, place.worktree, engine.name, config.databases.ports)
            env[f"{key}_PORT"] = str(port)
            continue
        server = Provider(config.root, _place=place).session(engine.name)
        env[f"{key}_PORT"] = str(server.port)
        env[f"{key}_URL"] = server.url
        env.update(server.env)
    return env


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """KEY=value lines, owner-only: the URLs carry the databases' passwords."""
    text = "# written by `worktree-gates new`; ports and URLs of this worktree's databases\n"
    text += "".join(f"{key}={value}\n" for key, value in sorted(values.items()))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def run_setup(config: Config, repo: git.Repo) -> None:
    """The configured setup commands in order; output to a log, progress to the terminal."""
    if not config.worktree.setup:
        return
    log = setup_log(repo.git_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    total = len(config.worktree.setup)
    with log.open("w") as handle:
        for number, command in enumerate(config.worktree.setup, start=1):
            print(f"new: setup {number}/{total}: {command}", file=sys.stderr, flush=True)
            handle.write(f"$ {command}\n")
            handle.flush()
            done = subprocess.run(
                command, shell=True, cwd=repo.root, env=git.clean_env(),
                stdout=handle, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                handle.flush()
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                raise GatesError(
                    f"setup command failed (exit {done.returncode}): {command}\n{tail}\n"
                    f"full output: {log}"
                )
