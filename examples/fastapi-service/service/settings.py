"""Settings, read from the environment once, at import time.

pytest-worktree-gates exports DATABASE_URL and REDIS_URL before any conftest is imported, so
the tests reach the worktree's own databases with no change here. In a worktree made by
`worktree-gates new`, the same values are also in `.env.worktree`, which is read as a fallback
so that `alembic upgrade head` and `uvicorn service.api:app` work there as they are.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env.worktree", extra="ignore")

    database_url: str
    redis_url: str
    cache_ttl_seconds: int = 60

    @property
    def sqlalchemy_url(self) -> str:
        return sqlalchemy_url(self.database_url)


def sqlalchemy_url(database_url: str) -> str:
    """``database_url`` with the psycopg (version 3) driver, which SQLAlchemy should use."""
    url = make_url(database_url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


settings = Settings()
