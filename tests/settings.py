"""Every process's settings in one object, for tests that drive several processes from one environment
(the product never builds this: each process reads only its own, bedrockctl/processes.py)."""

from __future__ import annotations

from dataclasses import dataclass

from consumer.settings import ConsumerSettings
from enforcement.settings import EnforcerSettings
from notifier.settings import NotifierSettings
from producer_config.settings import ProducerSettings


@dataclass(frozen=True)
class AllSettings(ConsumerSettings, EnforcerSettings, NotifierSettings, ProducerSettings):
    pass
