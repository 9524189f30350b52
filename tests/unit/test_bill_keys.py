"""The CUR's IAM principal as our quota key, and the per-row tolerance of `bedrockctl bill reconcile`."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audit.bill import Keys, Tolerance, ToleranceError

ROLE_KEYS = {"arn:aws:iam::111122223333:role/ci-runner": "arn:aws:iam::111122223333:role/build/ci-runner"}


@pytest.mark.parametrize(("principal", "key"), [
    ("arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:user/alice"),
    ("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_abc123/Alice@Example.com", "sso:alice@example.com"),
    ("arn:aws:sts::111122223333:assumed-role/ci-runner/i-0abc", "arn:aws:iam::111122223333:role/build/ci-runner"),
    ("arn:aws:sts::444455556666:assumed-role/lambda-x/fn", "arn:aws:iam::444455556666:role/lambda-x"),
    ("arn:aws:sts::111122223333:assumed-role/Federated/bob", "arn:aws:sts::111122223333:assumed-role/Federated/bob"),
    ("arn:aws-cn:sts::111122223333:assumed-role/app/s", "arn:aws-cn:iam::111122223333:role/app"),
    ("arn:aws:iam::111122223333:role/ci-runner", "arn:aws:iam::111122223333:role/build/ci-runner"),
    ("arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:root"),
])
def test_a_cur_principal_maps_to_the_key_its_calls_are_counted_under(principal: str, key: str) -> None:
    assert Keys(("Federated",), ROLE_KEYS).of(principal) == key


def test_tolerance_in_dollars_or_percent() -> None:
    default = Tolerance()
    assert default.allows(Decimal(100), Decimal("0.99")) and not default.allows(Decimal(100), Decimal("1.01"))
    assert default.allows(Decimal(0), Decimal("-0.01")) and not default.allows(Decimal(0), Decimal("0.02"))
    dollars = Tolerance.parse(["$0.50"])
    assert dollars.allows(Decimal(1000), Decimal("0.5")) and not dollars.allows(Decimal(1000), Decimal("0.51"))
    assert Tolerance.parse(["2%"]).allows(Decimal(50), Decimal(1))
    with pytest.raises(ToleranceError):
        Tolerance.parse(["lots"])
    with pytest.raises(ToleranceError):
        Tolerance.parse(["-1%"])
