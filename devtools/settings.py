"""Every process's settings in one object, for the demo, the benchmark and the tests, which drive several
processes from one environment (the product never builds this: each process reads only its own, see
bedrockctl/processes.py)."""

from __future__ import annotations

from dataclasses import dataclass

from console.settings import ConsoleSettings
from consumer.settings import ConsumerSettings
from notifier.settings import NotifierSettings
from producer_config.settings import ProducerSettings
from provisioning.settings import ProvisioningSettings


@dataclass(frozen=True)
class AllSettings(ConsumerSettings, ConsoleSettings, NotifierSettings, ProducerSettings, ProvisioningSettings):
    pass
