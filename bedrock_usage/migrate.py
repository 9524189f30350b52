"""Versioned schema migrations: `sql/NNN_name.sql`, applied in order, recorded in `schema_migrations`.

Idempotent: applied versions are skipped (and their checksum verified, so an edited migration is an
error rather than silent drift). After the migrations, the monthly partitions of `bedrock_calls` are
extended `PARTITION_MONTHS_AHEAD` months ahead.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pymysql.connections import Connection

from bedrock_usage import db
from bedrock_usage.config import MySQLParams
from bedrock_usage.partitions import ensure_partitions
from bedrock_usage.pricing.price_file import load_price_file
from bedrock_usage.pricing.store import import_table

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
SHIPPED_PRICES = Path(__file__).resolve().parent.parent / "infra" / "prices" / "bedrock-prices.yaml"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    found = [Migration(p.name[:-4], p) for p in sorted(sql_dir.glob("*.sql")) if _NAME.match(p.name)]
    if not found:
        raise MigrationError(f"no migrations found in {sql_dir}")
    return found


def statements(sql: str) -> list[str]:
    """Split a migration into statements: `;` at the end of a line ends one. Comments are dropped."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    parts = re.split(r";[ \t]*(?:\n|$)", "\n".join(lines))
    return [part.strip() for part in parts if part.strip()]


def migrate(params: MySQLParams, *, today: date | None = None, sql_dir: Path = SQL_DIR) -> list[str]:
    """Create the database if needed, apply pending migrations, extend partitions. Returns versions applied."""
    bootstrap = db.connect(params, with_database=False)
    try:
        with bootstrap.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{params.database}` "
                "DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
    finally:
        bootstrap.close()

    conn = db.connect(params)
    try:
        applied = _applied(conn)
        done: list[str] = []
        for migration in discover(sql_dir):
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version} changed after it was applied; add a new migration instead"
                    )
                continue
            log.info("applying migration", extra={"version": migration.version})
            with conn.cursor() as cur:
                for statement in statements(migration.sql):
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                    (migration.version, migration.checksum),
                )
            conn.commit()
            done.append(migration.version)
        ensure_partitions(conn, today=today)
        first_prices(conn, today or date.today())
        return done
    finally:
        conn.close()


def first_prices(conn: Connection, today: date) -> None:
    """A new database gets the price file the project ships: a consumer never meets an empty price table
    (a call is never free). Later changes are `bedrockctl prices import|sync`'s."""
    with conn.cursor() as cur:
        cur.execute("SELECT EXISTS (SELECT 1 FROM prices)")
        (has_prices,) = cur.fetchone() or (1,)
    conn.commit()
    if not has_prices:
        report = import_table(conn, load_price_file(SHIPPED_PRICES, today=today), dry_run=False)
        log.info("shipped prices loaded", extra={"file": str(SHIPPED_PRICES), "changes": len(report.changes)})


def _applied(conn: Connection) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version VARCHAR(255) CHARACTER SET ascii NOT NULL PRIMARY KEY,"
            " checksum CHAR(64) CHARACTER SET ascii NOT NULL,"
            " applied_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"
            ") ENGINE=InnoDB"
        )
        cur.execute("SELECT version, checksum FROM schema_migrations")
        rows = cur.fetchall()
    conn.commit()
    return {str(version): str(checksum) for version, checksum in rows}
