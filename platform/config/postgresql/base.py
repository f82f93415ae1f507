"""Django's PostgreSQL backend (``ENGINE = "config.postgresql"``), with a cheaper health check.

With ``CONN_HEALTH_CHECKS`` Django runs ``is_usable`` (a ``SELECT 1`` round trip) before the first query of every
request on a kept connection: for an annotator's request that was a third of its statements. A connection the server
has closed or is closing (restart, ``pg_terminate_backend``, idle timeout) always has something to read: the server's
error message or the end of the stream. So an idle connection with nothing to read is usable as it is, and only one
with something waiting (or in a transaction) is asked ``SELECT 1`` as Django asks, and replaced if that fails.
"""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq


def _nothing_to_read(connection: psycopg.Connection) -> bool:
    """True when the idle connection's socket has no data and no end of stream waiting (poll with no wait)."""
    pgconn = connection.pgconn
    if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return False
    if not hasattr(select, "poll"):
        return False  # not on Linux: always ask the server
    try:
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError, psycopg.OperationalError):
        return False


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if _nothing_to_read(connection):
            return True
        return bool(super().is_usable())
