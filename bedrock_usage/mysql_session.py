"""One lazily (re)connected MySQL connection for a long-running loop.

After a transient error the caller calls `reset()`; the next `conn` reconnects. No ping per batch.
"""

from __future__ import annotations

import contextlib

from pymysql.connections import Connection

from bedrock_usage import db
from bedrock_usage.config import MySQLParams


class MySQLSession:
    def __init__(self, params: MySQLParams) -> None:
        self._params = params
        self._conn: Connection | None = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = db.connect(self._params)
        return self._conn

    def reset(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    close = reset
