"""The Redis broker's keys, scripts and shards: what every part of the broker builds on.

The broker stores a queue in Redis Streams, one consumer group per priority stream.

Layout (every key of one queue shares the hash tag ``{celeriac:q:<name>}``, so each Lua
script touches one cluster slot):

    {celeriac:q:<name>}:p0 .. :p9    streams, one per priority; entry fields b=body, d=redeliveries
    {celeriac:q:<name>}:delayed      sorted set: key -> due time (ms, Redis clock)
    {celeriac:q:<name>}:delayed:m    hash: key -> "<priority>:<redeliveries>:<body>"
    {celeriac:q:<name>}:wake         list pushed when a new delayed message became the soonest
    {celeriac:q:<name>}:dead         capped stream of dead letters (p, reason, time, b)
    {celeriac:w}:leases / :info / :queues / :seen / :running / :gone / :pulse
                                     the worker registry, by incarnation (lease expiry, info,
                                     queues, last beat, started deliveries, recovered ones) and
                                     when any worker last beat (stall detection)

A queue split in shards (``queue_shards``, see ``shards.py``) has these keys once per shard,
under the shard's own tag.

Leases are the consumer group's pending-entries lists. No entry is ever re-delivered because
it sat idle: recovery takes back entries only from consumers whose *worker* stopped
heartbeating, so a task may run for hours while its worker lives. Acked entries are deleted,
so a stream only holds what is ready or leased.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.commands.core import Script

from ...brokers.base import PRIORITY_LEVELS, Broker, Delivery
from .coord import RedisCoordination
from .durable import Durability
from .shards import decode_tag, encode_tag, parse_queue_shards, shard_names
from .wire import Command, Connections

GROUP = "celeriac"
BLOCK_GRANULARITY = 0.11  # how late Redis may end a blocking command's timeout (1 / hz + slack)
DEAD_LETTER_CAP = 100_000
WORKERS_TAG = "{celeriac:w}"
CLUSTER_BLOCK_MS = 100  # how long a cluster consumer of several queues blocks on one of them


def _lua(name: str) -> str:
    """A script's source. Redis scripts cannot import: a line ``-- include: <snippet>`` stands for
    the text of ``lua/_<snippet>.lua``, so code two scripts share is written once."""
    folder = resources.files(__package__).joinpath("lua")
    return re.sub(r"^-- include: (\w+)$", lambda m: folder.joinpath(f"_{m.group(1)}.lua").read_text(),
                  folder.joinpath(f"{name}.lua").read_text(), flags=re.M)


def flat_deliveries(queue: str, flat: list[Any], shard: int = 0) -> list[Delivery]:
    if shard:
        return [Delivery(queue, int(flat[i]), flat[i + 2], encode_tag(shard, flat[i + 1].decode()),
                         int(flat[i + 3])) for i in range(0, len(flat), 4)]
    return [Delivery(queue, int(flat[i]), flat[i + 2], flat[i + 1].decode(), int(flat[i + 3]))
            for i in range(0, len(flat), 4)]


class QueueKeys:
    """The Redis keys of one queue."""

    __slots__ = ("dead", "delayed", "delayed_map", "streams", "streams_desc", "wake")

    def __init__(self, queue: str) -> None:
        tag = "{celeriac:q:" + queue + "}"
        self.streams = [f"{tag}:p{p}" for p in range(PRIORITY_LEVELS)]
        self.streams_desc = self.streams[::-1]
        self.delayed = f"{tag}:delayed"
        self.delayed_map = f"{tag}:delayed:m"
        self.wake = f"{tag}:wake"
        self.dead = f"{tag}:dead"

class RedisLayout(RedisCoordination, Broker):
    """The state and plumbing shared by the broker's parts (``broker.py`` mixes them together)."""

    def __init__(self, url: str, *, max_redeliveries: int = 3, lease_seconds: float = 6.0,
                 socket_timeout: float | None = 120.0, socket_connect_timeout: float | None = 5.0,
                 transport_options: dict[str, Any] | None = None, **_: Any) -> None:
        super().__init__(url, max_redeliveries=max_redeliveries, lease_seconds=lease_seconds)
        self.conns = Connections(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout,
                                 transport_options=transport_options, setting="broker_transport_options")
        # The per-task commands (enqueue, fetch, finish) go over the wire; the rest over redis-py.
        self.wire = self.conns.wire
        self.durability = Durability.from_options(transport_options, self.conns.socket_timeout)
        self._keys: dict[str, QueueKeys] = {}
        self._known_queues: set[str] = set()
        self._scripts: dict[str, Script] = {}
        self._grouped: set[str] = set()
        self.cluster = self.conns.cluster
        self._turn = 0  # which slot a cluster consumer blocks on next
        # Hot queues split over several hash tags (shards.py); empty for most users, and every
        # per-task step tests it before doing anything about shards.
        self._shards = parse_queue_shards(transport_options)
        self._physical: dict[str, list[str]] = {}
        self._spread: dict[str, int] = {}
        self._fetch_commands: dict[tuple[str, str, int], Command] = {}

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def client(self) -> Any:  # a redis.Redis, or a RedisCluster
        return self.conns.client

    def keys(self, queue: str) -> QueueKeys:
        keys = self._keys.get(queue)
        if keys is None:
            keys = self._keys[queue] = QueueKeys(queue)
        return keys

    def shards(self, queue: str) -> list[str]:
        """The physical queues ``queue`` is stored in (itself, unless it is sharded)."""
        names = self._physical.get(queue)
        if names is None:
            names = self._physical[queue] = shard_names(queue, self._shards.get(queue, 1))
        return names

    def _locate(self, d: Delivery) -> tuple[str, str]:
        """The physical queue and stream entry id of a delivery."""
        if not self._shards:
            return d.queue, d.tag
        shard, entry_id = decode_tag(d.tag)
        return (self.shards(d.queue)[shard] if shard else d.queue), entry_id

    def _target(self, queue: str) -> str:
        """The shard the next message of ``queue`` goes to: each producer deals them in turn,
        starting at a random shard so that many short-lived producers still spread."""
        names = self.shards(queue)
        if len(names) == 1:
            return queue
        turn = self._spread.get(queue)
        if turn is None:
            turn = random.randrange(len(names))
        self._spread[queue] = turn + 1
        return names[turn % len(names)]

    def script(self, name: str) -> Script:
        script = self._scripts.get(name)
        if script is None:
            # Script objects send EVALSHA and reload on NOSCRIPT (after a Redis restart).
            script = self._scripts[name] = self.client.register_script(_lua(name))
        return script

    def _run(self, name: str, keys: Sequence[str], args: Sequence[Any] = (), client: Any = None) -> Any:
        return self.script(name)(keys=list(keys), args=list(args), client=client or self.client)

    def _run_many(self, calls: Sequence[tuple[str, Sequence[str], Sequence[Any]]]) -> list[Any]:
        """Several script calls in one round trip: a redis-py pipeline on one server, the wire
        (one round trip per node, scripts loaded per node) on a cluster."""
        if self.cluster:
            return self.wire.call([self.wire.script(self.script(name), keys, args) for name, keys, args in calls])
        pipe = self.client.pipeline(transaction=False)
        for name, keys, args in calls:
            self._run(name, keys, args, client=pipe)
        return list(pipe.execute())

    def _expand(self, queues: Sequence[str]) -> list[tuple[str, int, str]]:
        """(queue, shard, physical queue) for every shard of ``queues``."""
        return [(queue, shard, name) for queue in queues for shard, name in enumerate(self.shards(queue))]
