"""The MySQL side on real MariaDB: migrations, partitions, the row-by-row fallback."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pymysql
import pytest

from bedrock_usage.migrate import MigrationError, discover, migrate, statements
from bedrock_usage.mysql_session import MySQLSession
from bedrock_usage.partitions import _partitions, drop_before, ensure_partitions
from consumer.rows import CallRow
from consumer.store import Store
from devtools.settings import AllSettings


def call(event_id: str, team: str = "platform") -> CallRow:
    return CallRow(date(2026, 11, 25), event_id, datetime(2026, 11, 25, 10, 0, 0, 123000), 1, team,
                   "111122223333", "InvokeModel", "amazon.nova-pro-v1:0", "eu-west-1", None, "10.0.0.1",
                   "Boto3/1.34 O'Reilly \\ agent", "req-1", None)


def test_migrate_is_idempotent_and_refuses_edited_migrations(schema: AllSettings, tmp_path: Path) -> None:
    assert migrate(schema.mysql) == []
    edited = tmp_path / "001_initial.sql"
    edited.write_text(discover()[0].sql + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(schema.mysql, sql_dir=tmp_path)


def test_statements_split_on_line_ending_semicolons_and_drop_comments() -> None:
    assert statements("-- c\nCREATE TABLE a (x INT);\n-- d\nCREATE TABLE b (y VARCHAR(3));\n") == [
        "CREATE TABLE a (x INT)", "CREATE TABLE b (y VARCHAR(3))"]


def test_partitions_are_added_ahead_and_dropped_for_retention(mysql: pymysql.connections.Connection) -> None:
    created = ensure_partitions(mysql, today=date(2099, 1, 15))
    assert "bedrock_calls.p209904" in created and created[-1] == "invocation_logs.p209904"
    assert ensure_partitions(mysql, today=date(2099, 1, 15)) == []
    for table in ("bedrock_calls", "invocation_logs"):
        assert [name for name, _ in _partitions(mysql, table)][-1] == "p_future"
    dropped = drop_before(mysql, 2, today=date(2099, 3, 1))
    assert "bedrock_calls.p209901" in dropped and "invocation_logs.p209901" in dropped
    assert not any(name.endswith("p209902") for name in dropped)
    for table in ("bedrock_calls", "invocation_logs"):
        left = [n for n, _ in _partitions(mysql, table)]
        assert all(name.split(".")[1] not in left for name in dropped if name.startswith(table + "."))


def test_rows_round_trip_with_quotes_and_backslashes(mysql: pymysql.connections.Connection,
                                                     schema: AllSettings) -> None:
    store = Store(MySQLSession(schema.mysql), schema.default_team)
    result = store.write([call("e-1"), call("e-1"), call("e-2")], [], [], datetime(2026, 11, 25))
    assert result.calls_inserted == 2
    with mysql.cursor() as cur:
        cur.execute("SELECT c.event_time, u.user_agent FROM bedrock_calls c JOIN user_agents u"
                    " ON u.id = c.user_agent_ref WHERE event_id = 'e-1'")
        assert cur.fetchone() == (datetime(2026, 11, 25, 10, 0, 0, 123000), "Boto3/1.34 O'Reilly \\ agent")


def test_a_row_the_database_rejects_becomes_a_dead_letter(
    mysql: pymysql.connections.Connection, schema: AllSettings
) -> None:
    store = Store(MySQLSession(schema.mysql), schema.default_team)
    result = store.write([call("e-1"), call("e-2", team="t" * 200), call("e-3")], [], [], datetime(2026, 11, 25))
    assert (result.calls_inserted, result.rejected_rows, result.dead_letters) == (2, 1, 1)
    with mysql.cursor() as cur:
        cur.execute("SELECT event_id FROM bedrock_calls ORDER BY event_id")
        assert cur.fetchall() == (("e-1",), ("e-3",))
        cur.execute("SELECT reason, LEFT(detail, 4) FROM dead_letters")
        assert cur.fetchall() == (("rejected_by_database", "e-2:"),)
