"""Databases inside a server: create, drop, clone, list. Used by fixtures and backends alike.

Names reaching SQL are built by us from validated parts (config ``database`` is restricted to
``[A-Za-z_][A-Za-z0-9_]*``, worker ids are ``gwN``), and are still quoted as identifiers.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pytest_worktree_gates.databases.base import Server, client, connect, take_connection

# An identifier is at most 63 bytes in PostgreSQL and 64 in MariaDB.
MAX_NAME = 63


def fit(name: str) -> str:
    """``name`` itself when short enough, else a prefix plus a hash that keeps it unique."""
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: MAX_NAME - 11]}_{digest}"


def _quote(engine: str, name: str) -> str:
    if engine == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def _autocommit(server: Server) -> Any:
    """DDL such as CREATE DATABASE cannot run inside a transaction block."""
    return take_connection(server)


def exists(admin: Server, name: str) -> bool:
    connection = _autocommit(admin)
    try:
        if admin.engine == "postgres":
            row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return row.fetchone() is not None
        with connection.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE %s", (name.replace("_", "\\_"),))
            return cursor.fetchone() is not None
    finally:
        connection.close()


def create(admin: Server, name: str) -> bool:
    """Create ``name`` unless it exists; True when it was created."""
    if admin.engine == "redis":
        return False
    connection = _autocommit(admin)
    quoted = _quote(admin.engine, name)
    try:
        if admin.engine == "mysql":
            with connection.cursor() as cursor:
                return bool(cursor.execute(f"CREATE DATABASE IF NOT EXISTS {quoted}"))
        # PostgreSQL has no IF NOT EXISTS for databases; a racing creator raises
        # DuplicateDatabase, which means the same thing as "it exists".
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        errors = client("postgres").errors
        try:
            connection.execute(f"CREATE DATABASE {quoted}")
        except (errors.DuplicateDatabase, errors.UniqueViolation):
            return False
        return True
    finally:
        connection.close()


def drop(admin: Server, name: str) -> None:
    if admin.engine == "redis":
        client = connect(admin.with_database(name))
        try:
            client.flushdb()
        finally:
            client.close()
        return
    connection = _autocommit(admin)
    quoted = _quote(admin.engine, name)
    try:
        if admin.engine == "mysql":
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {quoted}")
        else:
            # A template cannot be dropped until it is unmarked.
            if connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s AND datistemplate", (name,)
            ).fetchone():
                connection.execute(f"ALTER DATABASE {quoted} IS_TEMPLATE false")
            connection.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        connection.close()


def names(admin: Server, prefix: str) -> list[str]:
    """Databases whose name starts with ``prefix`` (PostgreSQL and MariaDB)."""
    connection = _autocommit(admin)
    try:
        if admin.engine == "postgres":
            rows = connection.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
            ).fetchall()
        else:
            with connection.cursor() as cursor:
                cursor.execute("SHOW DATABASES")
                rows = [row for row in cursor.fetchall() if row[0].startswith(prefix)]
        return sorted(str(row[0]) for row in rows)
    finally:
        connection.close()


def version(admin: Server) -> str:
    connection = _autocommit(admin)
    try:
        if admin.engine == "postgres":
            return str(connection.execute("SHOW server_version").fetchone()[0])
        if admin.engine == "mysql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT VERSION()")
                return str(cursor.fetchone()[0])
        return str(connection.info("server")["redis_version"])
    finally:
        connection.close()
