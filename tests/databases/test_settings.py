"""The databases section of the configuration: defaults and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_worktree_gates.config import load
from pytest_worktree_gates.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(text)
    return tmp_path


def test_defaults_images_ports_and_network(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            "[tool.worktree-gates.databases.postgres]\n"
            "[tool.worktree-gates.databases.mysql]\n"
            "[tool.worktree-gates.databases.redis]\n"
            "env = { REDIS_URL = '{url}', REDIS_HOST = '{host}:{port}' }\n",
        )
    )
    databases = config.databases
    assert databases.backend == "auto"
    assert databases.ports == (20000, 29999)
    assert databases.network == "bridge"
    assert [(e.name, e.image) for e in databases.engines] == [
        ("mysql", "mariadb:11"),
        ("postgres", "postgres:16"),
        ("redis", "redis:7"),
    ]
    assert databases.engine("redis").env == (
        ("REDIS_HOST", "{host}:{port}"),
        ("REDIS_URL", "{url}"),
    )


def test_asking_for_an_unconfigured_engine_says_how_to_add_it(tmp_path: Path) -> None:
    config = load(write(tmp_path, "[tool.worktree-gates.databases.redis]\n"))
    with pytest.raises(ConfigError, match=r"'postgres' is not configured.*databases\.postgres\]"):
        config.databases.engine("postgres")


def test_port_range_and_host_network(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            "[tool.worktree-gates.databases]\nport-range = [30000, 30010]\nnetwork = 'host'\n",
        )
    )
    assert config.databases.ports == (30000, 30010)
    assert config.databases.network == "host"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[tool.worktree-gates.databases]\nport-range = [30000]\n",
            "databases.port-range: expected [LOW, HIGH] with 1024 <= LOW <= HIGH <= 65535",
        ),
        (
            "[tool.worktree-gates.databases]\nport-range = [30000, 20000]\n",
            "got [30000, 20000]",
        ),
        (
            "[tool.worktree-gates.databases]\nport-range = [80, 90]\n",
            "databases.port-range: expected [LOW, HIGH]",
        ),
        (
            "[tool.worktree-gates.databases]\nnetwork = 'overlay'\n",
            "databases.network: expected one of bridge, host, got 'overlay'",
        ),
        (
            "[tool.worktree-gates.databases]\nbackend = 'podman'\n",
            "databases.backend: expected one of auto, docker, local, external",
        ),
        (
            "[tool.worktree-gates.databases.postgres]\nenv = { URL = '{uri}' }\n",
            "databases.postgres.env.URL: unknown placeholder {uri}; known: {url}, {port}",
        ),
        (
            "[tool.worktree-gates.databases.postgres]\nenv = { URL = '{url' }\n",
            "databases.postgres.env.URL: unbalanced { or }",
        ),
        (
            "[tool.worktree-gates.databases.postgres]\nenv = { PORT = 5432 }\n",
            "databases.postgres.env.PORT: expected a template",
        ),
        (
            "[tool.worktree-gates.databases.postgres]\ndatabase = 'my-db'\n",
            "databases.postgres.database: expected letters, digits and _",
        ),
        (
            "[tool.worktree-gates.databases.postgres]\nsetup = 'alembic upgrade head'\n",
            "databases.postgres.setup: expected a list of strings",
        ),
        (
            "[tool.worktree-gates.databases.postgres]\nimage = 16\n",
            "databases.postgres.image: expected an image reference, got 16",
        ),
        (
            "[tool.worktree-gates.databases.sqlite]\n",
            "databases.sqlite: unknown engine; expected one of postgres, mysql, redis",
        ),
        (
            "[tool.worktree-gates.databases.redis]\nport = 6379\n",
            "databases.redis.port: unknown key",
        ),
    ],
)
def test_bad_databases_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text) / "pyproject.toml"
    with pytest.raises(ConfigError) as raised:
        load(tmp_path)
    assert str(raised.value).startswith(f"{path}: tool.worktree-gates.databases")
    assert message in str(raised.value)
