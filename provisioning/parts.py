"""What a provisioning command works with: the IAM adapter, the database, the names of this account."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pymysql.connections import Connection

from bedrock_usage import aws, db
from provisioning.iam import Iam, ServiceCredentials
from provisioning.names import Names
from provisioning.settings import ProvisioningSettings


@dataclass
class Parts:
    iam: Iam
    conn: Connection
    names: Names
    settings: ProvisioningSettings

    def close(self) -> None:
        self.conn.close()


def assemble(settings: ProvisioningSettings, *, credentials: ServiceCredentials | None = None) -> Parts:
    account = aws.account_id(settings)
    iam = Iam(aws.client(settings, "iam"), account, credentials)
    return Parts(iam, db.connect(settings.mysql), Names(account, settings), settings)


@contextmanager
def opened(settings: ProvisioningSettings) -> Iterator[Parts]:
    """The parts for one command, closed after it whatever happens."""
    parts = assemble(settings)
    try:
        yield parts
    finally:
        parts.close()
