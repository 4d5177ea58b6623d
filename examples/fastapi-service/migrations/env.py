"""Alembic's entry point: migrate the database that the settings name."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

from service.models import Base
from service.settings import Settings

# The `alembic` command configures logging from alembic.ini; the tests, which run the
# migrations in their own process, set configure_logger to False to keep pytest's logging.
if context.config.config_file_name and context.config.attributes.get("configure_logger", True):
    fileConfig(context.config.config_file_name)

# Read here, not at service.settings' import: `alembic upgrade head` may run in a process that
# imported the settings before the database it migrates was chosen.
url = Settings().sqlalchemy_url

if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with create_engine(url).connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
