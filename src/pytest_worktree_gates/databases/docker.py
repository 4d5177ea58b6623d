"""The docker backend: one container and one named volume per (worktree, engine).

Containers follow the official images' environment contract (``POSTGRES_PASSWORD``,
``MARIADB_ROOT_PASSWORD``, ``redis-server --requirepass``), so the official images and locally
built ones that honour the same contract take one code path. They are named
``wtg-<repo>-<worktree>-<engine>``, labelled ``io.worktree-gates.*`` and publish on 127.0.0.1
only (or share the host's network, listening on 127.0.0.1).

A running container is adopted when its labels carry the same config hash; any change to the
image, the env contract, the network or the port recreates it (the volume, and so the data, is
kept unless the image changed).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_worktree_gates.databases.base import HOST, Server, Status, Target, wait_ready
from pytest_worktree_gates.errors import GatesError

NAME = "docker"
LABEL = "io.worktree-gates"
START_TIMEOUT = 120.0
DATA = {"postgres": "/var/lib/postgresql/data", "mysql": "/var/lib/mysql", "redis": "/data"}


def _sdk() -> Any:
    """The docker SDK, imported on first use: it costs ~0.2 s that local runs never pay."""
    return importlib.import_module("docker")


def engine() -> Any:
    """A client of a Docker engine that answers, or one error saying how to get one."""
    docker = _sdk()
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        api = docker.from_env(timeout=10)
        api.ping()
    except Exception as error:
        raise GatesError(
            f"no Docker engine answers at {where} (DOCKER_HOST) ({type(error).__name__}); "
            "start one (`sudo systemctl start docker`, or `dockerd &`), point DOCKER_HOST at "
            'one, or set [tool.worktree-gates.databases] backend = "local"'
        ) from None
    return api


def engine_answers() -> bool:
    try:
        engine().close()
    except GatesError:
        return False
    return True


def slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-.").lower() or "x"


def container_name(target: Target) -> str:
    return f"wtg-{slug(target.repo_name)}-{slug(target.worktree_name)}-{target.engine.name}"


def environment(target: Target) -> dict[str, str]:
    if target.engine.name == "postgres":
        return {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": target.password}
    if target.engine.name == "mysql":
        return {"MARIADB_ROOT_PASSWORD": target.password, "MYSQL_ROOT_PASSWORD": target.password}
    return {}


def command(target: Target) -> list[str]:
    """Server arguments; on the host network the server itself binds 127.0.0.1:PORT."""
    host = target.network == "host"
    port = str(target.port if host else target.engine.port)
    if target.engine.name == "postgres":
        args = ["postgres", "-c", "fsync=off", "-c", "synchronous_commit=off", "-p", port]
        return args + (["-c", f"listen_addresses={HOST}"] if host else [])
    if target.engine.name == "mysql":
        args = ["mariadbd", f"--port={port}", "--skip-name-resolve"]
        return args + ([f"--bind-address={HOST}"] if host else [])
    args = ["redis-server", "--port", port, "--requirepass", target.password, "--save", ""]
    return args + (["--bind", HOST] if host else [])


def config_hash(target: Target, image_id: str) -> str:
    """What must match for a running container to be adopted. The password enters only as a
    hash, so labels (readable by anyone with docker access) never show it."""
    blob = json.dumps(
        {
            "image": target.config.image,
            "image_id": image_id,
            "env": sorted(environment(target)),
            "command": [arg for arg in command(target) if arg != target.password],
            "secret": hashlib.sha256(target.password.encode()).hexdigest(),
            "network": target.network,
            "port": target.port,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def labels(target: Target, digest: str) -> dict[str, str]:
    return {
        f"{LABEL}.repo": str(target.common_dir),
        f"{LABEL}.worktree": str(target.worktree),
        f"{LABEL}.engine": target.engine.name,
        f"{LABEL}.config": digest,
    }


def _find(api: Any, name: str) -> Any:
    errors = _sdk().errors
    try:
        return api.containers.get(name)
    except errors.NotFound:
        return None


def image(api: Any, reference: str) -> Any:
    """The image, pulled with progress when missing; one clear error when it cannot be."""
    errors = _sdk().errors
    try:
        return api.images.get(reference)
    except errors.ImageNotFound:
        pass
    print(f"worktree-gates: pulling {reference}", file=sys.stderr)
    try:
        for event in api.api.pull(reference, stream=True, decode=True):
            status = event.get("status", "")
            if status and event.get("id"):
                print(f"  {event['id']}: {status} {event.get('progress', '')}", file=sys.stderr)
        return api.images.get(reference)
    except errors.APIError as error:
        reason = error.explanation or str(error)
        raise GatesError(
            f"image {reference!r} is not available locally and cannot be pulled ({reason}); "
            "pull or build it where a registry is reachable (docker pull / docker load), or "
            "set `image` of this engine in [tool.worktree-gates.databases] to an image you have"
        ) from None


def up(target: Target) -> tuple[Server, str]:
    api = engine()
    try:
        found = image(api, target.config.image)
        digest = config_hash(target, found.id)
        name = container_name(target)
        container = _find(api, name)
        if container is not None:
            mine = container.labels.get(f"{LABEL}.worktree")
            if mine != str(target.worktree):
                raise GatesError(
                    f"container {name} belongs to another worktree ({mine}); remove it with "
                    f"`docker rm -f {name}` or rename this worktree's directory"
                )
            confirmed = _confirmed(target) == container.id
            if confirmed and container.labels.get(f"{LABEL}.config") == digest:
                if container.status != "running":
                    container.start()
                _ready(target, container)
                return target.admin(NAME), name
            old_image = container.image.id
            container.remove(force=True)
            if not confirmed or old_image != found.id:
                # An unconfirmed volume may hold a half-run init; another engine version
                # cannot read this data. Either way it starts afresh.
                _remove_volume(api, name)
        _marker(target).unlink(missing_ok=True)
        container = _create(api, target, name, digest)
        _ready(target, container)
        _marker(target).write_text(json.dumps({"container": container.id}))
        return target.admin(NAME), name
    finally:
        api.close()


def _marker(target: Target) -> Path:
    """Written once a container first answered: like the local backend's ready.json, it tells
    a finished provisioning from one that a ``kill -9`` interrupted."""
    return target.worktree / "worktree-gates" / f"{target.engine.name}.docker.json"


def _confirmed(target: Target) -> str:
    try:
        return str(json.loads(_marker(target).read_text())["container"])
    except (OSError, ValueError, KeyError):
        return ""


def _create(api: Any, target: Target, name: str, digest: str) -> Any:
    options: dict[str, Any] = {
        "name": name,
        "command": command(target),
        "environment": environment(target),
        "labels": labels(target, digest),
        "volumes": {name: {"bind": DATA[target.engine.name], "mode": "rw"}},
        "detach": True,
    }
    if target.network == "host":
        options["network_mode"] = "host"
    else:
        options["ports"] = {f"{target.engine.port}/tcp": (HOST, target.port)}
    api.volumes.create(name=name, labels=labels(target, digest))
    return api.containers.run(target.config.image, **options)


def _ready(target: Target, container: Any) -> None:
    def died() -> str | None:
        container.reload()
        if container.status in ("created", "running"):
            return None
        tail = container.logs(tail=5).decode(errors="replace").strip().splitlines()
        return f"container {container.name} stopped while starting: {' | '.join(tail)}"

    wait_ready(target.admin(NAME), START_TIMEOUT, died)


def _remove_volume(api: Any, name: str) -> None:
    with contextlib.suppress(_sdk().errors.NotFound):
        api.volumes.get(name).remove(force=True)


def status(target: Target) -> Status:
    try:
        api = engine()
    except GatesError:
        return Status("unknown", "", "no Docker engine answers")
    try:
        name = container_name(target)
        container = _find(api, name)
        if container is None:
            return Status("absent", "")
        state = "running" if container.status == "running" else "stopped"
        return Status(state, name)
    finally:
        api.close()


def down(target: Target, purge: bool) -> None:
    api = engine()
    try:
        name = container_name(target)
        container = _find(api, name)
        if container is not None and container.labels.get(f"{LABEL}.worktree") != str(
            target.worktree
        ):
            return  # same name, another worktree's (or repo's) container: not ours to touch
        if container is not None:
            if purge:
                container.remove(force=True)
            elif container.status == "running":
                container.stop(timeout=10)
        if purge:
            _remove_volume(api, name)
            _marker(target).unlink(missing_ok=True)
    finally:
        api.close()


def orphans(common_dir: str, live: Iterable[str]) -> list[tuple[str, str, str]]:
    """(name, worktree, engine) of this repo's containers whose worktree is gone.

    Filtering by the repo label is what keeps gc away from every other repo's containers.
    """
    try:
        api = engine()
    except GatesError:
        return []
    keep = set(live)
    try:
        found = api.containers.list(all=True, filters={"label": f"{LABEL}.repo={common_dir}"})
        return [
            (c.name, c.labels.get(f"{LABEL}.worktree", ""), c.labels.get(f"{LABEL}.engine", ""))
            for c in found
            if c.labels.get(f"{LABEL}.worktree") not in keep
        ]
    finally:
        api.close()


def remove(name: str) -> None:
    api = engine()
    try:
        container = _find(api, name)
        if container is not None:
            container.remove(force=True)
        _remove_volume(api, name)
    finally:
        api.close()
