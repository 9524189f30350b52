"""The consumer's rows as MySQL receives them: calls, invocation logs, dead letters, unpriced models, their
SQL text (built here, column by column: pymysql's generic per-value escaping was a third of the consumer's
CPU time) and the small dimension tables (models, user agents) that keep the call tables narrow."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import pymysql
from pymysql.constants import SERVER_STATUS
from pymysql.converters import escape_string

from bedrock_usage.pricing.rates import Tokens
from bedrock_usage.quota import usd


@dataclass(frozen=True, slots=True)
class CallRow:
    event_date: date
    event_id: str
    event_time: datetime  # naive UTC
    principal_id: int
    team: str
    account_id: str
    operation: str
    model_id: str
    region: str
    inference_region: str | None
    source_ip: str | None
    user_agent: str | None
    request_id: str | None
    error_code: str | None
    bearer_token: bool = False  # made with a Bedrock API key


@dataclass(frozen=True, slots=True)
class LogRow:
    """One metered invocation log (sql/010_cost.sql `invocation_logs`)."""

    event_date: date
    event_time: datetime  # naive UTC
    request_id: str
    principal_id: int
    team: str
    account_id: str
    operation: str
    model_id: str  # as logged
    price_model: str | None  # the base model priced (the fallback's for an unpriced one)
    region: str
    inference_region: str | None
    price_scope: str
    tier: str
    error_code: str | None
    tokens: Tokens
    cost_nanos: int
    price_status: str
    cache_split: str


@dataclass(frozen=True, slots=True)
class Unpriced:
    """A model charged at the fallback price in a batch (sql/010 `unpriced_models`)."""

    model: str
    fallback_model: str | None
    calls: int
    first_seen: datetime  # naive UTC
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: str
    shard_id: str | None
    sequence_number: str | None
    sub_index: int
    reason: str
    detail: str
    raw: bytes
    received_at: datetime  # naive UTC

    @property
    def dedupe_key(self) -> str:
        ident = f"{self.source}\0{self.shard_id}\0{self.sequence_number}\0{self.sub_index}\0{self.reason}"
        if self.sequence_number is None:
            # Files have no sequence numbers: the content identifies the letter.
            ident += "\0" + hashlib.sha256(self.raw).hexdigest()
        return hashlib.sha256(ident.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What staging a batch wrote (the rows a redo finds already there are not counted again)."""

    calls_inserted: int
    dead_letters: int
    rejected_rows: int
    logs_inserted: int = 0


_NO_TOKENS = "NULL,NULL,NULL,NULL,NULL,NULL"


def _tokens(r: LogRow) -> str:
    t = r.tokens
    return f"{t.input},{t.output},{t.cache_read},{t.cache_write_5m},{t.cache_write_1h},{usd(r.cost_nanos):f}"


class Values:
    """One call row as SQL text, column by column (the types are known: no per-value dispatch)."""

    def __init__(self, conn: pymysql.connections.Connection) -> None:
        # What pymysql itself does per string.
        if getattr(conn, "server_status", 0) & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
            self._escape: Callable[[str], str] = lambda text: text.replace("'", "''")
        else:
            self._escape = escape_string
        # The columns of few distinct values (team, account, region, operation...) are escaped once per
        # Values (one batch): a dict lookup instead of a call, a scan and two concatenations per row.
        self._seen: dict[str | None, str] = {None: "NULL"}

    def _text(self, value: str | None) -> str:
        return "NULL" if value is None else "'" + self._escape(value) + "'"

    def _few(self, value: str | None) -> str:
        text = self._seen.get(value)
        if text is None:
            text = self._seen[value] = self._text(value)
        return text

    def row(self, c: CallRow, ref: tuple[int, int | None], log: LogRow | None = None) -> str:
        """The call's columns, then its log's tokens and cost when its log is at hand (else NULLs)."""
        text, few = self._text, self._few
        agent = "NULL" if ref[1] is None else str(ref[1])
        return (
            f"('{c.event_date.isoformat()}',{text(c.event_id)},'{c.event_time.isoformat(' ', 'milliseconds')}',"
            f"{c.principal_id},{few(c.team)},{few(c.account_id)},{few(c.operation)},{ref[0]},{few(c.region)},"
            f"{few(c.inference_region)},{text(c.source_ip)},{agent},{text(c.request_id)},{few(c.error_code)},"
            + ("1," if c.bearer_token else "0,") + (_NO_TOKENS if log is None else _tokens(log)) + ")"
        )

    def log(self, r: LogRow, model_ref: int, price_ref: int | None) -> str:
        text, few = self._text, self._few
        return (
            f"('{r.event_date.isoformat()}','{r.event_time.isoformat(' ', 'milliseconds')}',{text(r.request_id)},"
            f"{r.principal_id},{few(r.team)},{few(r.account_id)},{few(r.operation)},{model_ref},"
            f"{'NULL' if price_ref is None else price_ref},{few(r.region)},{few(r.inference_region)},"
            f"{few(r.price_scope)},{few(r.tier)},{few(r.error_code)},{_tokens(r)},{few(r.price_status)},"
            f"{few(r.cache_split)})"
        )


class Dimension:
    """Value → small integer id (models, user agents), cached for the life of the process."""

    def __init__(self, table: str, column: str, hashed: bool) -> None:
        self._table, self._column, self._hashed = table, column, hashed
        self._ids: dict[str, int] = {}

    def _key(self, value: str) -> str | bytes:
        return hashlib.sha256(value.encode()).digest() if self._hashed else value

    def ids(self, cur: pymysql.cursors.Cursor, values: set[str]) -> dict[str, int]:
        # Sorted: two shard processes upserting the same new values lock them in the same order.
        missing = sorted(v for v in values if v not in self._ids)
        if missing:
            if self._hashed:
                cur.executemany(
                    f"INSERT INTO {self._table} (sha256, {self._column}) VALUES (%s, %s)"
                    " ON DUPLICATE KEY UPDATE id = id",
                    [(self._key(v), v) for v in missing],
                )
                lookup_col = "sha256"
            else:
                cur.executemany(
                    f"INSERT INTO {self._table} ({self._column}) VALUES (%s) ON DUPLICATE KEY UPDATE id = id",
                    [(v,) for v in missing],
                )
                lookup_col = self._column
            by_key = {self._key(v): v for v in missing}
            placeholders = ",".join(["%s"] * len(missing))
            cur.execute(
                f"SELECT {lookup_col}, id FROM {self._table} WHERE {lookup_col} IN ({placeholders})",
                list(by_key),
            )
            for key, row_id in cur.fetchall():
                self._ids[by_key[key]] = int(row_id)
        return self._ids
