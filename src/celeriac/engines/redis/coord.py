"""The Redis broker's coordination primitives (clock, rate slots, keys, maps, logs) and the
translation of redis-py's errors into celeriac's; mixed into :class:`~.redis.RedisBroker`."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

import redis

from ...brokers.base import clamp_priority, redact_url
from ...exceptions import BrokerError, BrokerFull, OutcomeUnknown
from .connect import CLUSTER_UNAVAILABLE
from .wire import Connections, ReplyLost

# The clients are made without decode_responses (connect.py), so every reply is bytes where
# redis-py's annotations say ``bytes | str``; the casts below name the shapes that holds for.
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
StreamReply = list[tuple[bytes, StreamEntries]]


def translate_errors(func: Any) -> Any:
    """Turn redis-py's connection and out-of-memory errors into celeriac's, with the URL."""
    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(self, *args, **kwargs)
        except ReplyLost as exc:
            raise OutcomeUnknown(f"lost Redis at {redact_url(self.url)} before it answered, so what was sent "
                                 f"may or may not have been applied: {exc}") from None
        except redis.exceptions.ConnectionError as exc:
            raise BrokerError(f"cannot reach Redis at {redact_url(self.url)}: {exc}") from None
        except redis.exceptions.TimeoutError as exc:
            raise BrokerError(f"Redis at {redact_url(self.url)} timed out: {exc}") from None
        except CLUSTER_UNAVAILABLE as exc:
            # A master died and its replica is not promoted yet, or a slot is still moving: the
            # same to a worker as a server that does not answer (it waits and retries).
            raise BrokerError(f"Redis Cluster at {redact_url(self.url)} is not serving: "
                              f"{type(exc).__name__}: {exc}") from None
        except redis.exceptions.ResponseError as exc:
            if str(exc).startswith("OOM"):
                raise BrokerFull(f"Redis at {redact_url(self.url)} is full (maxmemory): {exc}") from None
            raise

    return wrapper


def chord_keys(queue: str, chord: str) -> tuple[str, str]:
    """A chord's hash and member set, under its join queue's hash tag so the script that counts
    and enqueues the join touches one slot."""
    base = f"{{celeriac:q:{queue}}}:chord:{chord}"
    return base, f"{base}:m"


class RedisCoordination:
    """Needs ``client`` (a redis.Redis) and ``_run(script, keys, args)`` from the broker."""

    url: str
    conns: Connections

    @property
    def client(self) -> Any:  # a redis.Redis, or a RedisCluster
        raise NotImplementedError

    def _run(self, name: str, keys: Sequence[str], args: Sequence[Any] = (), client: Any = None) -> Any:
        raise NotImplementedError

    @translate_errors
    def chord_start(self, chord: str, size: int, join: bytes, *, queue: str, priority: int = 0,
                    ttl: float) -> None:
        hash_key, _ = chord_keys(queue, chord)
        # On a cluster the queue registry and the chord's hash live in different slots: no MULTI
        # across them (the chord's own two writes are still one slot's, in order).
        pipe = self.client.pipeline(transaction=not self.conns.cluster)
        pipe.sadd("celeriac:queues", queue)
        pipe.hset(hash_key, mapping={"size": size, "join": join})
        pipe.pexpire(hash_key, max(1, int(ttl * 1000)))
        pipe.execute()

    @translate_errors
    def chord_part(self, chord: str, member: str, *, queue: str, priority: int = 0,
                   records: Sequence[tuple[str, bytes, bool]] = (), backend: Any = None,
                   failed: bool = False) -> bool:
        from .results import RedisBackend, done_key, meta_key

        keys = [*chord_keys(queue, chord), f"{{celeriac:q:{queue}}}:p{clamp_priority(priority)}"]
        args: list[Any] = [member, 0, "1" if failed else "0"]
        # Results go into the counting script only on one server: on a cluster their keys are in
        # other slots, so they are stored first (a member re-run after a crash stores them again
        # and counts nothing, since members are counted by id).
        if records and isinstance(backend, RedisBackend) and backend.conns.server == self.conns.server \
                and not self.conns.cluster:
            args[1] = backend.ttl_ms()
            for task_id, data, ready in records:
                keys += [meta_key(task_id), done_key(task_id)]
                args += [data, "1" if ready else "0"]
        elif records:
            backend.write(records)
        return bool(self._run("chord_part", keys, args))

    @translate_errors
    def chord_grow(self, chord: str, member: str, *, queue: str) -> bool:
        hash_key, _ = chord_keys(queue, chord)
        return bool(self._run("chord_grow", [hash_key, f"{hash_key}:a"], [member]))

    @translate_errors
    def chord_added(self, chord: str, *, queue: str) -> list[str]:
        hash_key, _ = chord_keys(queue, chord)
        return [m.decode() for m in self.client.lrange(f"{hash_key}:a", 0, -1)]

    @translate_errors
    def now(self) -> float:
        if self.conns.cluster:
            # The clock of the node holding the workers' registry, whose lease times it is
            # compared with (machines' clocks may differ by more than the servers' replies).
            node = self.client.get_node_from_key("{celeriac:w}")
            seconds, micros = self.client.time(target_nodes=node)
        else:
            seconds, micros = self.client.time()
        return float(seconds) + float(micros) / 1_000_000

    @translate_errors
    def rate_slot(self, key: str, interval: float) -> float:
        wait_ms = self._run("rate_slot", ["{celeriac:rate:" + key + "}"], [max(1, int(interval * 1000))])
        return int(wait_ms) / 1000.0

    @translate_errors
    def claim(self, key: str, ttl: float) -> bool:
        return bool(self.client.set(f"celeriac:kv:{key}", b"1", nx=True, px=max(1, int(ttl * 1000))))

    @translate_errors
    def put(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self.client.set(f"celeriac:kv:{key}", value, px=int(ttl * 1000) if ttl else None)

    @translate_errors
    def get(self, key: str) -> bytes | None:
        return cast("bytes | None", self.client.get(f"celeriac:kv:{key}"))

    @translate_errors
    def delete(self, key: str) -> None:
        self.client.delete(f"celeriac:kv:{key}")

    @translate_errors
    def map_set(self, name: str, field: str, value: bytes) -> None:
        self.client.hset(f"celeriac:map:{name}", field, value)

    @translate_errors
    def map_get(self, name: str) -> dict[str, bytes]:
        fields = cast("dict[bytes, bytes]", self.client.hgetall(f"celeriac:map:{name}"))
        return {k.decode(): v for k, v in fields.items()}

    @translate_errors
    def map_delete(self, name: str, field: str) -> bool:
        return bool(self.client.hdel(f"celeriac:map:{name}", field))

    @translate_errors
    def log_append(self, name: str, data: bytes, maxlen: int, ttl: float | None = None) -> str:
        key = f"celeriac:log:{name}"
        if ttl:
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(key, {"d": data}, maxlen=maxlen, approximate=True)
            pipe.pexpire(key, int(ttl * 1000))
            entry_id = pipe.execute()[0]
        else:
            entry_id = self.client.xadd(key, {"d": data}, maxlen=maxlen, approximate=True)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    @translate_errors
    def log_append_many(self, name: str, items: Sequence[bytes], maxlen: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for data in items:
            pipe.xadd(f"celeriac:log:{name}", {"d": data}, maxlen=maxlen, approximate=True)
        pipe.execute()

    @translate_errors
    def log_last(self, name: str) -> str | None:
        entries = self.client.xrevrange(f"celeriac:log:{name}", count=1)
        if not entries:
            return None
        entry_id = entries[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    @translate_errors
    def log_read(self, name: str, after: str | None, count: int,
                 timeout: float = 0.0) -> list[tuple[str, bytes]]:
        key = f"celeriac:log:{name}"
        start = "0-0" if after is None else after
        block = max(1, int(self.conns.wait(timeout) * 1000)) if timeout > 0 else None
        reply = cast("StreamReply | None", self.client.xread({key: start}, count=count, block=block))
        out = []
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                out.append((entry_id.decode(), fields.get(b"d", b"")))
        return out
