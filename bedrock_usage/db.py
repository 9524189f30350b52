"""MySQL connections (pymysql), shared by every process.

Connections are explicit-transaction (autocommit off) with utf8mb4 and UTC session time, so DATETIME
columns hold UTC whatever the server's zone.
"""

from __future__ import annotations

import pymysql
from pymysql.connections import Connection

from bedrock_usage.settings import MySQLParams

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
