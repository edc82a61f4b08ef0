"""The Redis broker: Redis Streams with one consumer group per priority stream.

This module holds the per-task path (enqueue, fetch, ack, finish, requeue, dead-letter); the key
layout and plumbing are in ``layout.py``, the rest in the parts mixed in below: ``leases.py``
(worker registry, recovery), ``delayed.py``, ``dead.py`` and ``admin.py`` (inspection, checks).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import redis

from ...brokers.base import PRIORITY_LEVELS, Delivery, clamp_priority
from .admin import RedisAdmin
from .coord import translate_errors
from .dead import RedisDeadLetters
from .delayed import RedisDelayed
from .layout import CLUSTER_BLOCK_MS, DEAD_LETTER_CAP, GROUP, flat_deliveries
from .leases import RedisLeases
from .shards import encode_tag
from .wire import Command, Packed

if TYPE_CHECKING:
    from .cluster_wire import ClusterWire


class RedisBroker(RedisLeases, RedisDelayed, RedisDeadLetters, RedisAdmin):
    """The Redis broker: the per-task path (enqueue, fetch, ack, finish, requeue) here, the rest
    in its parts (``layout``, ``leases``, ``delayed``, ``dead``, ``admin``)."""

    schemes = ("redis", "rediss", "unix", "sentinel", "rediscluster", "redisclusters")

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
        commands, new_queues, count = self._enqueue_commands(items)
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

    def _enqueue_commands(self, items: Iterable[tuple[str, bytes, int, float, str]], *, inline: bool = False
                          ) -> tuple[list[Command], set[str], int]:
        """The commands that queue ``items``, the queues they make known, and how many.
        ``inline``: scripts go with their source (EVAL), so a server that lost its script cache
        cannot refuse one while the commands sent with it run."""
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
                script = self.script("enqueue_delayed")
                script_keys = (keys.delayed, keys.delayed_map, keys.wake)
                script_args = (key or os.urandom(8).hex(), int(delay * 1000), clamp_priority(priority), 0, body)
                commands.append(("EVAL", script.script, len(script_keys), *script_keys, *script_args) if inline
                                else self.wire.script(script, script_keys, script_args))
            else:
                ready.setdefault(keys.streams[clamp_priority(priority)], []).append(body)
        for stream, bodies in ready.items():
            if len(bodies) == 1:
                commands.append(("XADD", stream, "*", "b", bodies[0]))
                continue
            for start in range(0, len(bodies), 1000):  # chunks keep each script call short
                commands.append(self.wire.script(self.script("xadd_many"), (stream,), bodies[start:start + 1000]))
        return commands, new_queues, count

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
            got.extend(flat_deliveries(queue, flat))
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
            got.extend(flat_deliveries(queue, flat, k))
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
        commands = self._record_commands(backend, records)
        # One round trip: results (same server), then acks, then events, executed in that order,
        # so no task is acked before its result is stored.
        commands.extend(self._ack_commands(deliveries))
        if events is not None:
            name, data, maxlen = events
            commands.append(("XADD", f"celeriac:log:{name}", "MAXLEN", "~", maxlen, "*", "d", data))
        if commands:
            self.wire.call(commands)

    def _record_commands(self, backend: Any, records: Sequence[tuple[str, bytes, bool]]) -> list[Command]:
        """The commands storing ``records``, to go first in the caller's write when the results
        live on this server; elsewhere (another server, a cluster, whose nodes keep no order
        between them) they are stored now, in a round trip of their own, and none is returned."""
        if not records:
            return []
        if self._shares_server(backend):
            return list(backend.commands(records, packed=True))
        backend.write(records)
        return []

    def _shares_server(self, backend: Any) -> bool:
        """Is ``backend`` a result store on this broker's server (so one round trip writes both)?"""
        from .results import RedisBackend

        return isinstance(backend, RedisBackend) and backend.conns.server == self.conns.server and not self.cluster

    @translate_errors
    def resend(self, delivery: Delivery | None, queue: str, body: bytes, *, priority: int = 0, delay: float = 0.0,
               key: str = "", backend: Any = None, records: Sequence[tuple[str, bytes, bool]] = ()) -> None:
        if self.durability or self.cluster:
            # Waiting for replicas answers per node, and a cluster's nodes keep no order between
            # them: queue first, then ack (at least once), as the contract's default does.
            super().resend(delivery, queue, body, priority=priority, delay=delay, key=key, backend=backend,
                           records=records)
            return
        commands = self._record_commands(backend, records)
        queued, new_queues, _ = self._enqueue_commands([(queue, body, priority, delay, key)], inline=True)
        # One write, and nothing in it the server can refuse and the wire send again later: it
        # runs the new message and the ack together, in this order.
        commands.extend(queued)
        if delivery is not None:
            commands.extend(self._ack_commands([delivery]))
        self.wire.call(commands)
        self._known_queues |= new_queues

    def _move(self, deliveries: Sequence[Delivery], where: str, detail: Any) -> None:
        self._run_many(self._move_calls(deliveries, where, detail))

    def _move_calls(self, deliveries: Sequence[Delivery], where: str, detail: Any
                    ) -> list[tuple[str, Sequence[str], Sequence[Any]]]:
        """The ``move`` script calls taking ``deliveries`` to ``where``, one per stream."""
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
        return calls

    @translate_errors
    def requeue(self, deliveries: Sequence[Delivery], *, delay: float = 0.0) -> None:
        if deliveries:
            if delay > 0:
                self._move(deliveries, "delayed", int(delay * 1000))
            else:
                self._move(deliveries, "ready", "")

    @translate_errors
    def dead_letter(self, deliveries: Sequence[Delivery], reason: str, *, backend: Any = None,
                    records: Sequence[tuple[str, bytes, bool]] = ()) -> None:
        commands = self._record_commands(backend, records)
        if commands and deliveries:
            # One write, the move sent with its script's source (nothing the server can refuse
            # while the results beside it are stored): recorded and moved together.
            for name, keys, args in self._move_calls(deliveries, "dead", reason):
                commands.append(("EVAL", self.script(name).script, len(keys), *keys, *args))
            self.wire.call(commands)
            return
        if commands:  # no delivery: the records alone
            self.wire.call(commands)
        if deliveries:  # the records went first, so a task is never dead-lettered without them
            self._move(deliveries, "dead", reason)

    def close(self) -> None:
        self.conns.close()
