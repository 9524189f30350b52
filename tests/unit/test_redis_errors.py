"""A full Redis is told apart from an unreachable one, in both forms a script's refusal takes."""

from __future__ import annotations

import pytest
import redis

from bedrock_usage import redis_errors

# What Redis 6 answers when a script's first write is refused (Redis 7 answers "OOM ..." itself, which
# redis-py raises as OutOfMemoryError: tests/chaos/test_redis_oom.py sees it on a real server).
REDIS_6 = ("Error running script (call to f_4c21a0004d45c63abcfd26fa6150a90beb3d0b2d): @user_script:122:"
           " @user_script: 122: -OOM command not allowed when used memory > 'maxmemory'.")


def test_redis_6s_wrapped_refusal_is_raised_as_full() -> None:
    with pytest.raises(redis.exceptions.OutOfMemoryError) as raised, redis_errors.full_as_oom():
        raise redis.exceptions.ResponseError(REDIS_6)
    assert redis_errors.is_full(raised.value)
    assert isinstance(raised.value, redis_errors.TRANSIENT)


def test_other_script_errors_are_not_retried() -> None:
    with pytest.raises(redis.exceptions.ResponseError) as raised, redis_errors.full_as_oom():
        raise redis.exceptions.ResponseError("Error running script: @user_script:3: bad argument")
    assert not isinstance(raised.value, redis_errors.TRANSIENT)


def test_full_and_unreachable_are_both_transient_but_only_one_is_full() -> None:
    assert redis_errors.is_full(redis.exceptions.OutOfMemoryError("command not allowed"))
    assert not redis_errors.is_full(redis.exceptions.ConnectionError("refused"))
    assert isinstance(redis.exceptions.ConnectionError("refused"), redis_errors.TRANSIENT)
