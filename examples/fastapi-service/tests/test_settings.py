"""Settings come from the environment; SQLAlchemy gets the psycopg 3 driver."""

from __future__ import annotations

import pytest

from service.settings import Settings, sqlalchemy_url


def test_a_postgresql_url_gets_the_psycopg_driver() -> None:
    assert (
        sqlalchemy_url("postgresql://postgres:s3cret@127.0.0.1:5432/app")
        == "postgresql+psycopg://postgres:s3cret@127.0.0.1:5432/app"
    )


def test_a_url_that_names_its_driver_is_kept() -> None:
    assert sqlalchemy_url("sqlite:///items.db") == "sqlite:///items.db"


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/shop")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("CACHE_TTL_SECONDS", "5")
    settings = Settings(_env_file=None)
    assert settings.sqlalchemy_url == "postgresql+psycopg://u:p@db:5432/shop"
    assert (settings.redis_url, settings.cache_ttl_seconds) == ("redis://cache:6379/0", 5)
