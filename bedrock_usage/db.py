"""MySQL connections (pymysql), shared by every process.

Connections are explicit-transaction (autocommit off) with utf8mb4 and UTC session time, so DATETIME
columns hold UTC whatever the server's zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

import pymysql
from pymysql.connections import Connection

from bedrock_usage.config import MySQLParams

# Errors that mean "the database is unreachable or went away": retry with backoff, do not checkpoint.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (pymysql.err.OperationalError, pymysql.err.InterfaceError)


def connect(params: MySQLParams, *, with_database: bool = True, connect_timeout: float = 5) -> Connection:
    conn: Connection = pymysql.connect(
        host=params.host,
        port=params.port,
        user=params.user,
        password=params.password,
        database=params.database if with_database else None,
        charset="utf8mb4",
        autocommit=False,
        connect_timeout=connect_timeout,
        init_command="SET time_zone = '+00:00'",
    )
    return conn


@overload
def to_db(value: datetime) -> datetime: ...
@overload
def to_db(value: None) -> None: ...
def to_db(value: datetime | None) -> datetime | None:
    """An instant as a DATETIME column holds it: naive, in UTC (the session's time zone)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None


def from_db(value: Any) -> datetime | None:
    """A DATETIME read back as an aware UTC instant (NULL stays None)."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None
