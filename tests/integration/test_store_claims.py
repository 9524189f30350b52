"""One pytest session per store (tests/conftest.py `claim`): a second session given this one's database or
Redis db is refused before it drops, empties or flushes anything of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pymysql
import redis

from bedrock_usage import db
from devtools.settings import AllSettings
from tests.conftest import TEST_MYSQL_URL, TEST_REDIS_URL, claim_name

ROOT = Path(__file__).resolve().parents[2]


def _held_elsewhere(settings: AllSettings, store: str) -> bool:
    """Whether another client of the server (as another session's would be) finds the store's lock taken."""
    other = db.connect(settings.mysql, with_database=False)
    try:
        with other.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (claim_name(store),))
            return bool(cur.fetchone() == (0,))
    finally:
        other.close()


def test_the_database_is_held_by_this_session(settings: AllSettings, mysql: pymysql.connections.Connection) -> None:
    assert _held_elsewhere(settings, f"mysql {settings.mysql.database}")


def test_a_test_of_redis_alone_holds_the_redis_db(settings: AllSettings, redis_client: redis.Redis) -> None:
    assert _held_elsewhere(settings, f"redis {TEST_REDIS_URL}")


def _second_session(test: str, **env: str) -> subprocess.CompletedProcess[str]:
    """This module's `test` in another pytest session, in this one's environment (its stores) plus `env`."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"{Path(__file__).relative_to(ROOT)}::{test}"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=120)


def test_a_second_session_on_the_same_stores_is_refused_before_it_touches_them(
    settings: AllSettings, mysql: pymysql.connections.Connection, redis_client: redis.Redis
) -> None:
    with mysql.cursor() as cur:
        cur.execute("INSERT INTO teams (name) VALUES ('still-here')")
    mysql.commit()
    redis_client.set("still-here", "1")

    same = _second_session("test_the_database_is_held_by_this_session")
    assert same.returncode == 1, same.stdout + same.stderr
    assert f"another pytest session is using mysql {settings.mysql.database}" in same.stdout, same.stdout
    # A database of its own, but this session's Redis db: what failed the provisioning e2e test at random.
    redis_only = _second_session("test_a_test_of_redis_alone_holds_the_redis_db",
                                 TEST_MYSQL_URL=TEST_MYSQL_URL.rsplit("/", 1)[0] + "/unused_by_any_session")
    assert redis_only.returncode == 1, redis_only.stdout + redis_only.stderr
    assert f"another pytest session is using redis {TEST_REDIS_URL}" in redis_only.stdout, redis_only.stdout

    with mysql.cursor() as cur:
        cur.execute("SELECT name FROM teams")
        assert cur.fetchall() == (("still-here",),)
    mysql.commit()
    assert redis_client.get("still-here") == b"1"
