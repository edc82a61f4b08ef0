"""Broker implementations, chosen by URL scheme."""

from __future__ import annotations

from typing import Any

from ..exceptions import ConfigurationError
from .base import Broker, DeadLetter, Delivery, QueueStats, Scheduled, WorkerRecord

__all__ = ["Broker", "DeadLetter", "Delivery", "QueueStats", "Scheduled", "WorkerRecord", "from_url"]


def from_url(url: str, **options: Any) -> Broker:
    """Build the broker for ``url``: ``redis://``/``rediss://``/``unix://``, ``sqlite://``, ``memory://``.

    Imports are deferred so ``import celeriac`` never imports redis.
    """
    scheme = url.partition("://")[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        try:
            from .redis import RedisBroker
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigurationError(
                f"broker {scheme}:// needs redis-py: pip install 'celeriac[redis]' ({exc})"
            ) from None
        return RedisBroker(url, **options)
    if scheme == "sqlite":
        from .sqlite import SQLiteBroker

        return SQLiteBroker(url, **options)
    if scheme == "memory":
        from .memory import MemoryBroker

        return MemoryBroker(url, **options)
    raise ConfigurationError(f"broker URL {url!r}: unknown scheme {scheme!r} (use redis://, sqlite:// or memory://)")
