"""The broker contract (``base.py``) and ``from_url``; the implementations live in
``celeriac.engines`` (one package per storage engine). ``from_url`` is kept here for users
and tests; celeriac itself opens stores through ``celeriac.engines``, the layer above this one."""

from __future__ import annotations

from typing import Any

from .base import Broker, DeadLetter, Delivery, QueueStats, Scheduled, WorkerRecord

__all__ = ["Broker", "DeadLetter", "Delivery", "QueueStats", "Scheduled", "WorkerRecord", "from_url"]


def from_url(url: str, **options: Any) -> Broker:
    """Build the broker for ``url`` (schemes: ``celeriac.engines.SCHEMES``).

    Imports are deferred so ``import celeriac`` never imports redis.
    """
    from ..engines import open_broker

    return open_broker(url, **options)
