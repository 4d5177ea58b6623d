"""The test images from scripts/services honour the official images' environment contract.

Each test starts a container the way the docker backend does (ports published on 127.0.0.1
only) and speaks the engine's own protocol from the host, over TCP: a log line or an open port
proves nothing, since docker's port proxy accepts connections before the server listens.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import docker.errors
import psycopg
import pymysql
import pytest
import redis
from docker.models.containers import Container
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import SERVICE_IMAGES, SERVICES_HINT, require_services

T = TypeVar("T")
READY_TIMEOUT = 60.0  # seconds; first starts take 1-5 s here
# What a client sees while the server inside is still initialising.
NOT_READY = (
    psycopg.OperationalError,
    pymysql.err.OperationalError,
    redis.exceptions.ConnectionError,
    ConnectionError,
)


@dataclass
class Started:
    container: Container
    port: int  # on 127.0.0.1

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")

    def ready(self, probe: Callable[[], T]) -> T:
        """probe()'s result once it stops failing as "not ready yet"; fails with the logs."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                return probe()
            except NOT_READY as exc:
                self.container.reload()
                if self.container.status == "exited" or time.monotonic() > deadline:
                    pytest.fail(f"not ready ({exc}); container logs:\n{self.logs()}")
                time.sleep(0.1)

    def server_user(self) -> str:
        """The user that PID 1, the server itself, runs as."""
        result = self.container.exec_run(["ps", "-o", "user=", "-p", "1"])
        return str(result.output.decode().strip())


Run = Callable[..., Started]


@pytest.fixture
def run_image(request: pytest.FixtureRequest) -> Iterator[Run]:
    """Start an engine's test image; every container goes, with its volumes, whatever happens."""
    client = require_services()
    started: list[Container] = []

    def remove_all() -> None:
        for container in started:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)

    request.addfinalizer(remove_all)

    def run(engine: str, port: int, env: dict[str, str], command: Any = None) -> Started:
        container = client.containers.run(
            SERVICE_IMAGES[engine],
            command,
            detach=True,
            environment=env,
            ports={f"{port}/tcp": ("127.0.0.1", None)},
            labels={"io.worktree-gates.test-run": request.node.nodeid},
        )
        started.append(container)
        container.reload()
        bindings = container.ports.get(f"{port}/tcp")
        if not bindings:
            # It exited before docker published the port (a refusal to start, on a busy
            # machine): there is nothing to connect to, only an exit code and logs to read.
            assert container.status == "exited", container.ports
            return Started(container, 0)
        binding = bindings[0]
        assert binding["HostIp"] == "127.0.0.1"
        return Started(container, int(binding["HostPort"]))

    yield run


def exit_of(started: Started) -> tuple[int, str]:
    """Exit code and logs of a container that is expected to stop on its own."""
    code = started.container.wait(timeout=60)["StatusCode"]
    return int(code), started.logs()


def test_images_carry_the_hash_of_their_inputs() -> None:
    client = require_services()
    for image in SERVICE_IMAGES.values():
        labels = client.images.get(image).labels
        assert re.fullmatch(r"[0-9a-f]{16}", labels["io.worktree-gates.inputs"]), image


def test_postgres_user_password_and_database(run_image: Run) -> None:
    env = {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "s3cret", "POSTGRES_DB": "appdb"}
    pg = run_image("postgres", 5432, env)

    def query(password: str) -> tuple[Any, ...] | None:
        url = f"postgresql://app:{password}@127.0.0.1:{pg.port}/appdb"
        with psycopg.connect(url, connect_timeout=5) as conn:
            return conn.execute("SELECT 1, current_user, current_database()").fetchone()

    assert pg.ready(lambda: query("s3cret")) == (1, "app", "appdb")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        query("wrong")
    assert pg.server_user() == "postgres"


def test_postgres_refuses_to_start_without_a_password(run_image: Run) -> None:
    code, logs = exit_of(run_image("postgres", 5432, {}))
    assert code == 1
    assert "POSTGRES_PASSWORD" in logs


def mysql_row(
    db: Started, user: str, password: str, database: str | None, sql: str
) -> tuple[Any, ...] | None:
    """The first row of ``sql`` on the container's server, over TCP as ``user``."""
    conn = pymysql.connect(
        host="127.0.0.1", port=db.port, user=user, password=password, database=database,
        connect_timeout=5,
    )  # fmt: skip
    with conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()


def test_mariadb_user_and_database(run_image: Run) -> None:
    env = {
        "MARIADB_ROOT_PASSWORD": "r00t",
        "MARIADB_DATABASE": "appdb",
        "MARIADB_USER": "app",
        "MARIADB_PASSWORD": "s3cret",
    }
    db = run_image("mariadb", 3306, env)

    def query(user: str, password: str, database: str | None) -> tuple[Any, ...] | None:
        return mysql_row(db, user, password, database, "SELECT 1, CURRENT_USER(), DATABASE()")

    assert db.ready(lambda: query("app", "s3cret", "appdb")) == (1, "app@%", "appdb")
    assert query("root", "r00t", None) == (1, "root@%", None)
    with pytest.raises(pymysql.err.OperationalError) as refused:
        query("app", "wrong", "appdb")
    assert refused.value.args[0] == 1045  # access denied
    assert db.server_user() == "mysql"


def test_mariadb_reads_the_mysql_aliases_and_random_root_password(run_image: Run) -> None:
    env = {
        "MYSQL_RANDOM_ROOT_PASSWORD": "yes",
        "MYSQL_DATABASE": "legacy",
        "MYSQL_USER": "old",
        "MYSQL_PASSWORD": "pw",
    }
    db = run_image("mariadb", 3306, env)
    assert db.ready(lambda: mysql_row(db, "old", "pw", "legacy", "SELECT DATABASE()")) == (
        "legacy",
    )
    assert "GENERATED ROOT PASSWORD: " in db.logs()


def test_mariadb_refuses_to_start_without_a_root_password_option(run_image: Run) -> None:
    code, logs = exit_of(run_image("mariadb", 3306, {"MARIADB_DATABASE": "appdb"}))
    assert code == 1
    assert "MARIADB_ROOT_PASSWORD" in logs


def test_redis_takes_server_arguments_as_command(run_image: Run) -> None:
    cache = run_image("redis", 6379, {}, ["redis-server", "--requirepass", "s3cret"])

    def ping(password: str | None) -> bool:
        # No retries: a refused password is an answer, not a hiccup to wait out.
        client = redis.Redis(
            host="127.0.0.1", port=cache.port, password=password, socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )  # fmt: skip
        with client:
            return bool(client.ping())

    assert cache.ready(lambda: ping("s3cret")) is True
    with pytest.raises(redis.exceptions.AuthenticationError):
        ping("wrong")
    with pytest.raises(redis.exceptions.AuthenticationError):
        ping(None)  # NOAUTH
    assert cache.server_user() == "redis"


@pytest.mark.parametrize("required", ["", "1"])
def test_a_missing_engine_skips_or_fails_under_require_services(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, required: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setenv("WTG_REQUIRE_SERVICES", required)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match=re.escape(SERVICES_HINT)):
        require_services()
