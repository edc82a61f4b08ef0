"""Hot-queue sharding: one queue split over several hash tags, so that on a Redis Cluster its
messages live on several masters (``broker_transport_options={'queue_shards': {'images': 3}}``).

Shard 0 is the queue's own tag, so messages sent before the queue was sharded stay reachable.
Shard k names ``<queue>#<j>``, with ``j`` the smallest number whose slot falls in the k-th of the
cluster's slot ranges not holding shard 0 (the 16384 slots cut into as many equal ranges as
shards): ``redis-cli --cluster create`` gives each master an equal range, so the shards of one
queue land on different masters. Names depend only on the queue and the count, so producers and
consumers agree without asking the cluster. A delivery from shard k carries ``<k>@<entry id>``
as its tag (tags are the broker's own handle), so acks and recovery find the shard again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from ...exceptions import ConfigurationError

SEARCH_LIMIT = 100_000


def queue_tag(name: str) -> str:
    return "{celeriac:q:" + name + "}"


def slot_of(name: str) -> int:
    return int(key_slot(("celeriac:q:" + name).encode()))


def shard_names(queue: str, count: int) -> list[str]:
    """The physical queue names of ``queue`` split in ``count`` shards, shard 0 first."""
    if count <= 1:
        return [queue]

    def band(slot: int) -> int:
        return slot * count // REDIS_CLUSTER_HASH_SLOTS

    taken = band(slot_of(queue))
    names = [queue]
    wanted = [b for b in range(count) if b != taken]
    j = 0
    for target in wanted:
        while True:
            j += 1
            if j > SEARCH_LIMIT:
                raise ConfigurationError(f"queue_shards: found no hash tag for shard {len(names)} of {queue!r}")
            name = f"{queue}#{j}"
            if band(slot_of(name)) == target:
                names.append(name)
                break
    return names


def parse_queue_shards(transport_options: Mapping[str, Any] | None) -> dict[str, int]:
    raw = (transport_options or {}).get("queue_shards") or {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"broker_transport_options['queue_shards'] must map queue names to shard counts, "
                                 f"not {type(raw).__name__}")
    out: dict[str, int] = {}
    for queue, count in raw.items():
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 64:
            raise ConfigurationError(
                f"broker_transport_options['queue_shards'][{queue!r}] must be a whole number from 1 to 64, "
                f"not {count!r}")
        out[str(queue)] = count
    return out


def encode_tag(shard: int, entry_id: str) -> str:
    return f"{shard}@{entry_id}" if shard else entry_id


def decode_tag(tag: str) -> tuple[int, str]:
    shard, at, entry_id = tag.partition("@")
    return (int(shard), entry_id) if at else (0, tag)
