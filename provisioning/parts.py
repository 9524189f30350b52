"""What a provisioning command works with: the IAM adapter, the database, the names of this account."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

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


Work = Callable[[Parts, argparse.Namespace, TextIO], int]


def handler(work: Work) -> Callable[[argparse.Namespace, ProvisioningSettings], int]:
    """The command's handler: it only opens the parts and runs the work on them. A command that touches
    service-specific credentials is written as work on given parts, so that tests can give it a stand-in
    for them (moto has none)."""
    def handle(args: argparse.Namespace, settings: ProvisioningSettings) -> int:
        with opened(settings) as parts:
            return work(parts, args, sys.stdout)
    return handle
