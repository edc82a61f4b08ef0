"""Result store implementations, chosen by URL scheme."""

from __future__ import annotations

from typing import Any

from ..exceptions import ConfigurationError
from .base import Meta, ResultBackend

__all__ = ["Meta", "ResultBackend", "from_url"]


def from_url(url: str, **options: Any) -> ResultBackend:
    """Build the result store for ``url`` (same schemes as brokers)."""
    scheme = url.partition("://")[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        try:
            from .redis import RedisBackend
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigurationError(
                f"result backend {scheme}:// needs redis-py: pip install 'celeriac[redis]' ({exc})"
            ) from None
        return RedisBackend(url, **options)
    if scheme == "sqlite":
        from .sqlite import SQLiteBackend

        return SQLiteBackend(url, **options)
    if scheme == "memory":
        from .memory import MemoryBackend

        return MemoryBackend(url, **options)
    raise ConfigurationError(
        f"result backend URL {url!r}: unknown scheme {scheme!r} (use redis://, sqlite:// or memory://)"
    )
