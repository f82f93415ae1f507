"""Database helpers shared by the apps."""

from __future__ import annotations

from typing import Any

import psycopg
from django.db import connection, connections


def fetchone_prepared(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    """Run one hot query; on PostgreSQL as a server-side prepared statement.

    Django binds parameters on the client, so the server parses and plans every call again; for the few queries
    an annotator's request makes, that was a tenth of the database's work. Errors are Django's, as usual.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as plain:
            plain.execute(sql, params)
            return plain.fetchone()
    # What Django's own cursors do first: a kept connection the server dropped is replaced (CONN_HEALTH_CHECKS).
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)  # type: ignore[arg-type]
        return cursor.fetchone()


def connections_drop_broken() -> None:
    """Close this thread's database connections that no longer work (the server dropped them), so the next query
    opens a fresh one. Unlike ``close_old_connections`` it leaves working connections alone, also one inside a
    transaction."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.is_usable():
            conn.close()
