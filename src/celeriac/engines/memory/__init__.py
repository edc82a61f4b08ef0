"""The in-process engine, for users' tests and eager mode: stores shared by URL name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .broker import MemoryBroker
    from .results import MemoryBackend


def open_broker(url: str, **options: Any) -> MemoryBroker:
    from .broker import MemoryBroker

    return MemoryBroker(url, **options)


def open_results(url: str, **options: Any) -> MemoryBackend:
    from .results import MemoryBackend

    return MemoryBackend(url, **options)
