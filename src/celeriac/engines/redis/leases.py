"""The Redis broker's worker registry and leases: heartbeats, recovery of the entries of workers
that stopped heartbeating, eviction, release, and the fenced finish that checks a lease."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

import redis

from ...brokers.base import (
    BEAT_FORGOTTEN,
    BEAT_LAPSED,
    BEAT_OK,
    Delivery,
    WorkerRecord,
    worker_name,
)
from .coord import StreamEntries, translate_errors
from .layout import DEAD_LETTER_CAP, GROUP, WORKERS_TAG, RedisLayout, flat_deliveries
from .shards import encode_tag
from .wire import Command

logger = logging.getLogger("celeriac.broker")


class RedisLeases(RedisLayout):
    """Leases belong to worker incarnations; recovery takes back what a dead one's consumers held."""

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
        return flat_deliveries(queue, flat, shard)

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
