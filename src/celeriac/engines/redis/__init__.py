"""The Redis engine: one server (``redis://``, ``rediss://``, ``unix://``), a master found
through Redis Sentinel (``sentinel://``), or a Redis Cluster (``rediscluster://``); how a URL
becomes connections is ``connect.py``, and the per-task wire on a cluster ``cluster_wire.py``.

Every key of a queue shares one hash tag and every multi-key step is one Lua script touching
one slot; a hot queue can be split over several tags (``shards.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .broker import RedisBroker
    from .results import RedisBackend


def open_broker(url: str, **options: Any) -> RedisBroker:
    from .broker import RedisBroker

    return RedisBroker(url, **options)


def open_results(url: str, **options: Any) -> RedisBackend:
    from .results import RedisBackend

    return RedisBackend(url, **options)
