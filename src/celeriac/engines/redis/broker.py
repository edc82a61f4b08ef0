"""The Redis broker: Redis Streams with one consumer group per priority stream.

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

import logging
import os
import random
import time
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, cast

import redis
from redis.commands.core import Script

from ...brokers.base import (
    BEAT_FORGOTTEN,
    BEAT_LAPSED,
    BEAT_OK,
    PRIORITY_LEVELS,
    Broker,
    DeadLetter,
    Delivery,
    QueueStats,
    Scheduled,
    WorkerRecord,
    clamp_priority,
    worker_name,
)
from ...exceptions import ConfigurationError
from .coord import RedisCoordination, StreamEntries, translate_errors
from .durable import Durability
from .shards import decode_tag, encode_tag, parse_queue_shards, shard_names
from .wire import Command, Connections, Packed

if TYPE_CHECKING:
    from .cluster_wire import ClusterWire

logger = logging.getLogger("celeriac.broker")

GROUP = "celeriac"
BLOCK_GRANULARITY = 0.11  # how late Redis may end a blocking command's timeout (1 / hz + slack)
DEAD_LETTER_CAP = 100_000
WORKERS_TAG = "{celeriac:w}"
CLUSTER_BLOCK_MS = 100  # how long a cluster consumer of several queues blocks on one of them


def _lua(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text()


def _flat_deliveries(queue: str, flat: list[Any], shard: int = 0) -> list[Delivery]:
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


class RedisBroker(RedisCoordination, Broker):
    schemes = ("redis", "rediss", "unix", "sentinel", "rediscluster", "redisclusters")

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

    # -- producing --------------------------------------------------------------------------
    @translate_errors
    def enqueue(self, queue: str, body: bytes, *, priority: int = 0, delay: float = 0.0,
                key: str = "") -> None:
        if (delay and delay > 0) or queue not in self._known_queues or self.durability:
            self._enqueue([(queue, body, priority, delay, key)], spin=True)
        else:  # the common case: one command, on this thread's own connection
            keys = self.keys(self._target(queue) if self._shards else queue)
            self.wire.one("XADD", keys.streams[clamp_priority(priority)], "*", "b", body, spin=True)

    @translate_errors
    def enqueue_many(self, items: Iterable[tuple[str, bytes, int, float, str]]) -> None:
        self._enqueue(items, spin=False)

    def _enqueue(self, items: Iterable[tuple[str, bytes, int, float, str]], spin: bool) -> None:
        commands: list[Command] = []
        ready: dict[str, list[bytes]] = {}
        new_queues: set[str] = set()
        count = 0
        for queue, body, priority, delay, key in items:
            count += 1
            keys = self.keys(self._target(queue) if self._shards else queue)
            if queue not in self._known_queues and queue not in new_queues:
                new_queues.add(queue)
                commands.append(("SADD", "celeriac:queues", queue))
            if delay and delay > 0:
                commands.append(self.wire.script(
                    self.script("enqueue_delayed"), (keys.delayed, keys.delayed_map, keys.wake),
                    (key or os.urandom(8).hex(), int(delay * 1000), clamp_priority(priority), 0, body)))
            else:
                ready.setdefault(keys.streams[clamp_priority(priority)], []).append(body)
        for stream, bodies in ready.items():
            if len(bodies) == 1:
                commands.append(("XADD", stream, "*", "b", bodies[0]))
                continue
            for start in range(0, len(bodies), 1000):  # chunks keep each script call short
                commands.append(self.wire.script(self.script("xadd_many"), (stream,), bodies[start:start + 1000]))
        if self.durability and commands and self.cluster:
            # WAIT answers for the node it reaches only: one after the writes of each node.
            acks = cast("ClusterWire", self.wire).call_waiting(commands, self.durability.wait, spin=spin)[1]
            self._known_queues |= new_queues
            self.durability.check(min(acks, default=0), self.url, count)
            return
        if self.durability and commands:
            commands.append(self.durability.wait)  # in the same write: one round trip, not two
        replies = self.wire.call(commands, spin=spin)
        self._known_queues |= new_queues  # only once the SADD is known to have happened
        if self.durability and commands:
            self.durability.check(replies[-1], self.url, count)

    # -- consuming --------------------------------------------------------------------------
    @translate_errors
    def fetch(self, queues: Sequence[str], consumer: str, count: int, timeout: float) -> list[Delivery]:
        got: list[Delivery] = []
        for queue in queues:
            if len(got) >= count:
                break
            if self._shards and queue in self._shards:
                got.extend(self._fetch_shards(queue, consumer, count - len(got)))
                continue
            flat = self.wire.call([self._fetch_command(queue, consumer, count - len(got))])[0]
            got.extend(_flat_deliveries(queue, flat))
        if got or timeout <= 0:
            return got
        return self._block(queues, consumer, count, timeout)

    def _fetch_command(self, queue: str, consumer: str, count: int) -> Command:
        """The fetch script's call: a consumer sends the same few again and again, so on one
        server each is made and packed once (``Packed``)."""
        if self.cluster:
            return self.wire.script(self.script("fetch"), self.keys(queue).streams_desc, (GROUP, consumer, count))
        command = self._fetch_commands.get((queue, consumer, count))
        if command is None:
            command = Packed(self.wire.script(self.script("fetch"), self.keys(queue).streams_desc,
                                              (GROUP, consumer, count)))
            if len(self._fetch_commands) < 1024:  # a process fetching for ever-new consumer names
                self._fetch_commands[(queue, consumer, count)] = command
        return command

    def _fetch_shards(self, queue: str, consumer: str, count: int) -> list[Delivery]:
        """Lease from a sharded queue: ask every shard (one round trip per node) for its highest
        ready priority, then lease from the shards in that order, so a priority-9 message on
        one shard goes before priority-0 ones on another; equal ones take turns."""
        names = self.shards(queue)
        tops = self.wire.call([self.wire.script(self.script("top_priority"), self.keys(n).streams_desc, (GROUP,))
                               for n in names])
        start = self._turn = self._turn + 1
        order = sorted(range(len(names)), key=lambda k: (-int(tops[k]), (k - start) % len(names)))
        got: list[Delivery] = []
        for k in order:
            if int(tops[k]) < 0 or len(got) >= count:
                break
            flat = self.wire.evalsha(self.script("fetch"), self.keys(names[k]).streams_desc,
                                     (GROUP, consumer, count - len(got)))
            got.extend(_flat_deliveries(queue, flat, k))
        return got

    def _block(self, queues: Sequence[str], consumer: str, count: int, timeout: float) -> list[Delivery]:
        """Wait for the first message on any stream of ``queues``.

        XREADGROUP BLOCK wakes on the first XADD; it may lease from a lower priority level than
        a message that arrived in the same instant, which only matters for simultaneous arrivals.
        """
        where: dict[bytes, tuple[str, int, int]] = {}
        for queue in queues:
            for shard, name in enumerate(self.shards(queue) if self._shards else (queue,)):
                keys = self.keys(name)
                if name not in self._grouped:
                    self._run("ensure_groups", keys.streams, [GROUP])
                    self._grouped.add(name)
                for priority in range(PRIORITY_LEVELS - 1, -1, -1):
                    where[keys.streams[priority].encode()] = (queue, priority, shard)
        block = max(1, int(self.conns.wait(timeout) * 1000))
        if self.cluster:
            where, block = self._one_slot(where, block)
        # Over the wire, not redis-py: its retry-on-error could lease twice and lose the first
        # reply's messages to a lease this process never learns of.
        try:
            reply = self.wire.one("XREADGROUP", "GROUP", GROUP, consumer, "COUNT", count, "BLOCK", block,
                                  "STREAMS", *where, *(">" for _ in where))
        except redis.exceptions.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._grouped.clear()  # a stream was deleted by hand; recreate groups next time
            return []
        got: list[Delivery] = []
        # RESP3 (redis-py 8's default) answers a map of stream -> entries, RESP2 a list of pairs.
        for stream, entries in reply.items() if isinstance(reply, dict) else reply or ():
            queue, priority, shard = where[stream]
            for entry_id, flat in entries:
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
                got.append(Delivery(queue, priority, fields.get(b"b", b""),
                                    encode_tag(shard, entry_id.decode()), int(fields.get(b"d", 0))))
        return got

    def _one_slot(self, where: dict[bytes, tuple[str, int, int]],
                  block: int) -> tuple[dict[bytes, tuple[str, int, int]], int]:
        """On a cluster one XREADGROUP may only name streams of one slot: block on one queue's
        (or shard's) streams, a different one each call, and briefly when there are several, so
        a message elsewhere waits at most that long (the caller fetches every queue first)."""
        units = list(dict.fromkeys((queue, shard) for queue, _, shard in where.values()))
        if len(units) == 1:
            return where, block
        queue, shard = units[self._turn % len(units)]
        self._turn += 1
        return {k: v for k, v in where.items() if (v[0], v[2]) == (queue, shard)}, min(block, CLUSTER_BLOCK_MS)

    @translate_errors
    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            self.wire.call(self._ack_commands(deliveries))

    def _ack_commands(self, deliveries: Sequence[Delivery]) -> list[Command]:
        """One XACK and one XDEL per stream, each naming every entry of the batch."""
        tags: dict[str, list[str]] = {}
        if self._shards:
            for d in deliveries:
                name, entry_id = self._locate(d)
                tags.setdefault(self.keys(name).streams[d.priority], []).append(entry_id)
        else:
            for d in deliveries:
                tags.setdefault(self.keys(d.queue).streams[d.priority], []).append(d.tag)
        commands: list[Command] = []
        for stream, ids in tags.items():
            commands.append(("XACK", stream, GROUP, *ids))
            commands.append(("XDEL", stream, *ids))
        return commands

    @translate_errors
    def finish(self, deliveries: Sequence[Delivery], *, backend: Any = None,
               records: Sequence[tuple[str, bytes, bool]] = (), events: tuple[str, bytes, int] | None = None) -> None:
        from .results import RedisBackend

        commands: list[Command] = []
        if records:
            if isinstance(backend, RedisBackend) and backend.conns.server == self.conns.server \
                    and not self.cluster:
                commands.extend(backend.commands(records, packed=True))
            else:
                # On a cluster the results live on other nodes than the acks, and nodes keep
                # no order between them: the results are stored first, in a round trip of theirs.
                backend.write(records)
        # One round trip: results (same server), then acks, then events, executed in that order,
        # so no task is acked before its result is stored.
        commands.extend(self._ack_commands(deliveries))
        if events is not None:
            name, data, maxlen = events
            commands.append(("XADD", f"celeriac:log:{name}", "MAXLEN", "~", maxlen, "*", "d", data))
        if commands:
            self.wire.call(commands)

    def _move(self, deliveries: Sequence[Delivery], where: str, detail: Any) -> None:
        by_stream: dict[tuple[str, int], list[tuple[str, Delivery]]] = {}
        for d in deliveries:
            name, entry_id = self._locate(d)
            by_stream.setdefault((name, d.priority), []).append((entry_id, d))
        calls: list[tuple[str, Sequence[str], Sequence[Any]]] = []
        for (queue, priority), group in by_stream.items():
            keys = self.keys(queue)
            args: list[Any] = [GROUP, where, detail, DEAD_LETTER_CAP]
            for entry_id, d in group:
                args += [entry_id, d.priority, d.redeliveries, d.body]
            calls.append(("move", [keys.streams[priority], *keys.streams, keys.delayed, keys.delayed_map, keys.dead],
                          args))
        self._run_many(calls)

    @translate_errors
    def requeue(self, deliveries: Sequence[Delivery], *, delay: float = 0.0) -> None:
        if deliveries:
            if delay > 0:
                self._move(deliveries, "delayed", int(delay * 1000))
            else:
                self._move(deliveries, "ready", "")

    @translate_errors
    def dead_letter(self, deliveries: Sequence[Delivery], reason: str) -> None:
        if deliveries:
            self._move(deliveries, "dead", reason)

    # -- leases and recovery ----------------------------------------------------------------
    def _registry(self, *fields: str) -> list[str]:
        return [f"{WORKERS_TAG}:{field}" for field in fields]

    @translate_errors
    def heartbeat(self, worker: str, info: bytes, queues: Sequence[str], *,
                  running: Sequence[Delivery] = (), first: bool = False) -> str:
        code = self._run("heartbeat", self._registry("leases", "info", "queues", "seen", "gone", "running", "pulse"),
                         [worker, int(self.lease_seconds * 1000), info, ",".join(queues),
                          "\x1e".join(self._running_item(d) for d in running),
                          "1" if first else "0", int(self.stall_seconds * 1000)])
        return BEAT_LAPSED if code == 1 else BEAT_FORGOTTEN if code == 2 else BEAT_OK

    def _running_item(self, d: Delivery) -> str:
        name, entry_id = self._locate(d)
        return f"{name}\x1f{d.priority}:{entry_id}"

    @translate_errors
    def deregister(self, worker: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(f"{WORKERS_TAG}:leases", worker)
        pipe.zrem(f"{WORKERS_TAG}:gone", worker)
        for field in ("queues", "info", "seen", "running"):
            pipe.hdel(f"{WORKERS_TAG}:{field}", worker)
        pipe.execute()

    def _recover_queue(self, queue: str, shard: int, mode: str, name: str,
                       charged: Sequence[str] = ()) -> list[Delivery]:
        keys = self.keys(self.shards(queue)[shard] if shard else queue)
        flat = self._run("recover", [*keys.streams, keys.dead],
                         [GROUP, mode, name, self.max_redeliveries, DEAD_LETTER_CAP, *charged])
        return _flat_deliveries(queue, flat, shard)

    def _take_back(self, worker: str, queues: Sequence[str], running: str, evicted: bool) -> list[Delivery]:
        """Give back every entry of ``worker``'s consumers in ``queues``, charging ``running``."""
        charged: dict[str, list[str]] = {}
        for item in running.split("\x1e") if running else ():
            queue, _, tag = item.partition("\x1f")
            charged.setdefault(queue, []).append(tag)
        dead: list[Delivery] = []
        for queue in queues:
            for shard, physical in enumerate(self.shards(queue)):
                dead += self._recover_queue(queue, shard, "prefix", worker + "/", charged.get(physical, ()))
        if self._run("forget_worker", self._registry("leases", "gone", "running"), [worker, "1" if evicted else "0"]):
            how = "was proved dead" if evicted else "stopped heartbeating"
            logger.warning("worker %s %s; its tasks went back to their queues", worker, how)
        return dead

    @translate_errors
    def recover(self, worker: str | None = None) -> list[Delivery]:
        dead: list[Delivery] = []
        flat = self._run("expired_workers", self._registry("leases", "queues", "running", "pulse"),
                         [worker or "", int(self.stall_seconds * 1000)])
        for i in range(0, len(flat), 3):
            queues = [q for q in flat[i + 1].decode().split(",") if q]
            dead += self._take_back(flat[i].decode(), queues, flat[i + 2].decode(), evicted=False)
        return dead

    @translate_errors
    def evict(self, worker: str) -> list[Delivery]:
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(f"{WORKERS_TAG}:queues", worker)
        pipe.hget(f"{WORKERS_TAG}:running", worker)
        queues, running = pipe.execute()
        names = [q for q in (queues or b"").decode().split(",") if q]
        return self._take_back(worker, names, (running or b"").decode(), evicted=True)

    @translate_errors
    def release(self, consumer: str, queues: Sequence[str], *, charged: Sequence[Delivery] = ()) -> list[Delivery]:
        dead: list[Delivery] = []
        located = [(self._locate(d), d.priority) for d in charged]
        for queue in queues:
            for shard, physical in enumerate(self.shards(queue)):
                tags = [f"{priority}:{entry_id}" for (name, entry_id), priority in located if name == physical]
                dead += self._recover_queue(queue, shard, "exact", consumer, tags)
        return dead

    @translate_errors
    def holding(self, consumer: str, deliveries: Sequence[Delivery]) -> list[Delivery]:
        if not deliveries:
            return []
        pipe = self.client.pipeline(transaction=False)
        for d in deliveries:
            name, entry_id = self._locate(d)
            pipe.xpending_range(self.keys(name).streams[d.priority], GROUP, entry_id, entry_id, 1,
                                consumername=consumer)
        return [d for d, pending in zip(deliveries, pipe.execute(), strict=True) if pending]

    @translate_errors
    def finish_fenced(self, consumer: str, items: Sequence[tuple[Delivery | None, Sequence[tuple[str, bytes, bool]]]],
                      *, backend: Any = None) -> list[Delivery]:
        from .results import RedisBackend, done_key, meta_key

        if not (isinstance(backend, RedisBackend) and backend.conns.server == self.conns.server) or self.cluster:
            # A cluster cannot check a lease and write the results in one script: the stream
            # and the result keys live in different slots.
            return super().finish_fenced(consumer, items, backend=backend)
        ttl = backend.ttl_ms()
        commands: list[Command] = []
        fenced: list[Delivery] = []
        for delivery, records in items:
            if delivery is None:
                commands.extend(backend.commands(records))
                continue
            name, entry_id = self._locate(delivery)
            keys: list[str] = [self.keys(name).streams[delivery.priority]]
            args: list[Any] = [GROUP, consumer, entry_id, ttl]
            for task_id, data, ready in records:
                keys += [meta_key(task_id), done_key(task_id)]
                args += [data, "1" if ready else "0"]
            commands.append(self.wire.script(self.script("finish_fenced"), keys, args))
            fenced.append(delivery)
        replies = self.wire.call(commands) if commands else []
        verdicts = replies[len(replies) - len(fenced):] if fenced else []
        return [d for d, kept in zip(fenced, verdicts, strict=True) if not kept]

    @translate_errors
    def held(self, worker: str, queues: Sequence[str]) -> list[tuple[str, Delivery]]:
        out: list[tuple[str, Delivery]] = []
        prefix = worker + "/"
        for queue, shard, physical in self._expand(queues):
            keys = self.keys(physical)
            for priority, stream in enumerate(keys.streams):
                try:
                    consumers = self.client.xinfo_consumers(stream, GROUP)
                except redis.exceptions.ResponseError:
                    continue
                for info in consumers:
                    name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
                    if not name.startswith(prefix) or not info.get("pending"):
                        continue
                    pending = self.client.xpending_range(stream, GROUP, "-", "+", 10_000, consumername=name)
                    for p in pending:
                        entry_id = p["message_id"]
                        entries = cast("StreamEntries", self.client.xrange(stream, entry_id, entry_id))
                        if entries:
                            fields = entries[0][1]
                            tag = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                            out.append((name, Delivery(queue, priority, fields.get(b"b", b""),
                                                       encode_tag(shard, tag), int(fields.get(b"d", 0)))))
        return out

    def _expand(self, queues: Sequence[str]) -> list[tuple[str, int, str]]:
        """(queue, shard, physical queue) for every shard of ``queues``."""
        return [(queue, shard, name) for queue in queues for shard, name in enumerate(self.shards(queue))]

    # -- delayed ----------------------------------------------------------------------------
    @translate_errors
    def promote(self, queues: Sequence[str], limit: int = 1000) -> float | None:
        calls: list[tuple[str, Sequence[str], Sequence[Any]]] = []
        for _queue, _shard, name in self._expand(queues):
            keys = self.keys(name)
            calls.append(("promote", [keys.delayed, keys.delayed_map, *keys.streams], [limit]))
        waits = [w for w in self._run_many(calls) if w >= 0]
        return min(waits) / 1000.0 if waits else None

    def wake_keys(self, queues: Sequence[str]) -> list[str]:
        return [self.keys(name).wake for _q, _s, name in self._expand(queues)]

    @translate_errors
    def wait_delayed(self, queues: Sequence[str], timeout: float) -> None:
        """Sleep until ``timeout`` passes or a producer adds a delayed message that became the
        soonest of one of ``queues`` (so a short countdown is not late by a polling interval)."""
        if timeout <= 0:
            return
        deadline = time.monotonic() + timeout
        keys = self.wake_keys(queues)
        # Redis times out blocked clients from its cron, at ``hz`` (10 by default): a BLPOP
        # asked to wait 130 ms returns up to 100 ms late. So block only until the last stretch,
        # then watch the wake-up lists in short local sleeps until the due time.
        if self.cluster and len(keys) > 1:
            return self._poll_wake(keys, deadline)
        if timeout > BLOCK_GRANULARITY + 0.02 and self.client.blpop(
                keys, timeout=self.conns.wait(timeout - BLOCK_GRANULARITY, 0.01)):
            return
        while (left := deadline - time.monotonic()) > 0:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.lpop(key)
            if any(pipe.execute()):
                return
            time.sleep(min(left, 0.005))

    def _poll_wake(self, keys: Sequence[str], deadline: float) -> None:
        """A cluster cannot block on lists of several slots: look every 20 ms instead."""
        while (left := deadline - time.monotonic()) > 0:
            if any(self.wire.call([("LPOP", key) for key in keys])):
                return
            time.sleep(min(left, 0.02))

    @translate_errors
    def scheduled(self, queues: Sequence[str], limit: int = 100) -> list[Scheduled]:
        out: list[Scheduled] = []
        for queue, _shard, name in self._expand(queues):
            keys = self.keys(name)
            members = self.client.zrange(keys.delayed, 0, limit - 1, withscores=True)
            if not members:
                continue
            packed = cast("list[bytes | None]", self.client.hmget(keys.delayed_map, [m for m, _ in members]))
            for (member, score), value in zip(members, packed, strict=True):
                if value is None:
                    continue
                priority, _redeliveries, body = value.split(b":", 2)
                out.append(Scheduled(queue, int(priority), score / 1000.0, member.decode(), body))
        out.sort(key=lambda s: s.due)
        return out[:limit]

    @translate_errors
    def remove_scheduled(self, queue: str, key: str) -> bool:
        removed = False
        for name in self.shards(queue):
            keys = self.keys(name)
            pipe = self.client.pipeline(transaction=True)
            pipe.zrem(keys.delayed, key)
            pipe.hdel(keys.delayed_map, key)
            removed = bool(pipe.execute()[0]) or removed
        return removed

    @translate_errors
    def reschedule(self, queue: str, key: str, delay: float) -> bool:
        due_ms = int((self.now() + max(delay, 0.0)) * 1000)
        for name in self.shards(queue):  # a sharded queue's message is in one of its shards
            keys = self.keys(name)
            pipe = self.client.pipeline(transaction=True)
            pipe.zscore(keys.delayed, key)
            pipe.zadd(keys.delayed, {key: due_ms}, xx=True)
            # A promoter sleeping until a later due time must look again.
            pipe.lpush(keys.wake, "1")
            pipe.ltrim(keys.wake, 0, 0)
            if pipe.execute()[0] is not None:
                return True
        return False

    # -- inspection -------------------------------------------------------------------------
    @translate_errors
    def stats(self, queues: Sequence[str]) -> list[QueueStats]:
        calls: list[tuple[str, Sequence[str], Sequence[Any]]] = []
        expanded = self._expand(queues)
        for _queue, _shard, name in expanded:
            keys = self.keys(name)
            calls.append(("stats", [*keys.streams, keys.delayed, keys.dead], [GROUP]))
        sums: dict[str, list[int]] = {queue: [0] * 13 for queue in queues}
        for (queue, _shard, _name), counts in zip(expanded, self._run_many(calls), strict=True):
            sums[queue] = [a + int(c) for a, c in zip(sums[queue], counts[:13], strict=True)]
        return [QueueStats(queue, c[:10], delayed=c[11], unacked=c[10], dead=c[12])
                for queue, c in ((q, sums[q]) for q in queues)]

    @translate_errors
    def purge(self, queues: Sequence[str]) -> int:
        total = 0
        for _queue, _shard, name in self._expand(queues):
            keys = self.keys(name)
            total += int(self._run("purge", [*keys.streams, keys.delayed, keys.delayed_map], [GROUP]))
        return total

    @translate_errors
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        for shard, name in enumerate(self.shards(queue)):
            entries = self.client.xrange(self.keys(name).dead, "-", "+", count=limit - len(out))
            out += [DeadLetter(queue, encode_tag(shard, entry_id.decode()), f.get(b"b", b""),
                               f.get(b"reason", b"").decode(), int(f.get(b"time", 0)) / 1000.0)
                    for entry_id, f in entries]
            if len(out) >= limit:
                break
        return out

    def _dead_ids(self, queue: str, ids: Sequence[str] | None) -> list[tuple[str, list[str] | None]]:
        """Dead-letter ids per shard (None: all of that shard's)."""
        names = self.shards(queue)
        if ids is None:
            return [(name, None) for name in names]
        per: dict[str, list[str]] = {}
        for one in ids:
            shard, entry_id = decode_tag(one)
            per.setdefault(names[shard] if shard < len(names) else queue, []).append(entry_id)
        return list(per.items())

    @translate_errors
    def retry_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        total = 0
        for name, entry_ids in self._dead_ids(queue, ids or None):  # no ids: all of them
            keys = self.keys(name)
            total += int(self._run("retry_dead", [keys.dead, *keys.streams], list(entry_ids or [])))
        return total

    @translate_errors
    def drop_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        if ids is not None and not ids:
            return 0
        total = 0
        for name, entry_ids in self._dead_ids(queue, ids):
            dead = self.keys(name).dead
            if entry_ids is None:
                total += int(self.client.xlen(dead))
                self.client.delete(dead)
            else:
                total += int(self.client.xdel(dead, *entry_ids))
        return total

    @translate_errors
    def queues(self) -> list[str]:
        return sorted(m.decode() for m in cast("set[bytes]", self.client.smembers("celeriac:queues")))

    @translate_errors
    def workers(self) -> list[WorkerRecord]:
        now = self.now()
        pipe = self.client.pipeline(transaction=False)
        pipe.zrange(f"{WORKERS_TAG}:leases", 0, -1, withscores=True)
        pipe.zrange(f"{WORKERS_TAG}:gone", 0, -1, withscores=True)
        pipe.hgetall(f"{WORKERS_TAG}:info")
        pipe.hgetall(f"{WORKERS_TAG}:seen")
        leases, gone, infos, seen = pipe.execute()
        stale = [name for name, when in gone if when / 1000.0 < now - self.worker_retention]
        if stale:  # a worker gone for long enough leaves the registry
            pipe = self.client.pipeline(transaction=False)
            pipe.zrem(f"{WORKERS_TAG}:gone", *stale)
            for field in ("queues", "info", "seen", "running"):
                pipe.hdel(f"{WORKERS_TAG}:{field}", *stale)
            pipe.execute()
        out = []
        for key, expiry in leases:
            out.append(WorkerRecord(worker_name(key.decode()), infos.get(key, b""), expiry / 1000.0 > now,
                                    int(seen.get(key, 0)) / 1000.0, key.decode()))
        for key, _when in gone:
            if key not in stale:
                out.append(WorkerRecord(worker_name(key.decode()), infos.get(key, b""), False,
                                        int(seen.get(key, 0)) / 1000.0, key.decode()))
        return out

    # -- lifecycle --------------------------------------------------------------------------
    @translate_errors
    def check(self, *, allow_evicting: bool = False) -> list[str]:
        if not self.cluster:
            return self._check_server(self.client, allow_evicting)
        # Every master holds queues: each one's settings count.
        warnings: list[str] = []
        for node in self.client.get_primaries():
            for warning in self._check_server(node.redis_connection, allow_evicting, f" ({node.name})"):
                if warning not in warnings:
                    warnings.append(warning)
        return warnings

    @staticmethod
    def _check_server(client: Any, allow_evicting: bool, where: str = "") -> list[str]:
        warnings: list[str] = []
        try:
            config = client.config_get("maxmemory-policy")
            policy = config.get("maxmemory-policy", "noeviction")
            persistence = client.info("persistence")
        except redis.exceptions.ResponseError:
            return ["cannot read Redis CONFIG (managed Redis?): persistence and eviction not checked"]
        if policy != "noeviction":
            message = (f"Redis maxmemory-policy is {policy!r}{where}: Redis may evict queued tasks. "
                       "Set it to 'noeviction' or set broker_allow_evicting_redis=True")
            if not allow_evicting:
                raise ConfigurationError(message)
            warnings.append(message)
        aof = bool(persistence.get("aof_enabled"))
        rdb_saves = client.config_get("save").get("save", "")
        if not aof and not rdb_saves:
            warnings.append("Redis persistence is off (no AOF, no RDB snapshots): "
                            "a Redis restart loses every queued task")
        elif not aof:
            warnings.append("Redis runs without AOF: a crash loses tasks queued since the last snapshot")
        return warnings

    def close(self) -> None:
        self.conns.close()
