"""The Redis result store.

``celeriac-task-meta-<id>`` holds the meta record (JSON), as Celery's key name suggests to
anyone reading Redis by hand. A ready state also pushes one element onto
``celeriac-task-done-{<id>}``; waiters rotate that list with BLMOVE (pop and push back in one
step), so every waiter wakes, one that starts after the write wakes at once, and nobody polls.
Both keys expire together with ``result_expires``. The commands are plain ones in a pipeline (in
order: the record is set before the list is pushed): a Lua script cost three times the Redis CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis

from ...backends.base import ResultBackend
from ...brokers.base import redact_url
from ...exceptions import BrokerError
from .connect import CLUSTER_UNAVAILABLE
from .wire import Command, Connections


def meta_key(task_id: str) -> str:
    return f"celeriac-task-meta-{{{task_id}}}"


def done_key(task_id: str) -> str:
    return f"celeriac-task-done-{{{task_id}}}"


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def packed_commands(records: Sequence[tuple[str, bytes, bool]], ttl: int) -> list[Command]:
    """What ``commands`` gives, as the RESP bytes hiredis would pack each command into (one
    server: the wire sends bytes as they are). Formatted here in one step per command: hiredis
    formats every argument's length through sprintf, and a finished task's SET, RPUSH and
    PEXPIRE cost about 20,000 instructions that way, against some 8,000 here."""
    px = b"$2\r\nPX\r\n" + _bulk(b"%d" % ttl) if ttl else b""
    set_head = b"*5\r\n$3\r\nSET\r\n" if ttl else b"*3\r\n$3\r\nSET\r\n"
    pexpire_ttl = _bulk(b"%d" % ttl)
    out: list[Command] = []
    for task_id, data, ready in records:
        if type(data) is not bytes:  # only bytes are packed here; anything else as hiredis does it
            out += RedisBackend.tuple_commands([(task_id, data, ready)], ttl)
            continue
        tag = task_id.encode()
        meta = b"celeriac-task-meta-{" + tag + b"}"  # meta_key / done_key, as bytes
        out.append(b"%b$%d\r\n%b\r\n$%d\r\n%b\r\n%b" % (set_head, len(meta), meta, len(data), data, px))
        if ready:
            done = _bulk(b"celeriac-task-done-{" + tag + b"}")
            out.append(b"*3\r\n$5\r\nRPUSH\r\n%b$1\r\n1\r\n" % done)
            if ttl:
                out.append(b"*3\r\n$7\r\nPEXPIRE\r\n%b%b" % (done, pexpire_ttl))
    return out


class RedisBackend(ResultBackend):
    schemes = ("redis", "rediss", "unix", "sentinel", "rediscluster", "redisclusters")

    def __init__(self, url: str, *, expires: float | None = 86400.0, socket_timeout: float | None = 120.0,
                 socket_connect_timeout: float | None = 5.0, transport_options: dict[str, Any] | None = None,
                 **_: Any) -> None:
        super().__init__(url, expires=expires)
        self.conns = Connections(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout,
                                 transport_options=transport_options, setting="result_backend_transport_options")
        self.wire = self.conns.wire

    @property
    def client(self) -> Any:  # a redis.Redis, or a RedisCluster
        return self.conns.client

    def ttl_ms(self) -> int:
        return int(self.expires * 1000) if self.expires else 0

    def write(self, records: Sequence[tuple[str, bytes, bool]]) -> None:
        try:
            self.wire.call(self.commands(records))
        except (redis.exceptions.ConnectionError, *CLUSTER_UNAVAILABLE) as exc:
            raise BrokerError(f"cannot reach result store at {redact_url(self.url)}: {exc}") from None

    def commands(self, records: Sequence[tuple[str, bytes, bool]], packed: bool = False) -> list[Command]:
        """The commands storing ``records``, in order (sent together with the broker's acks
        when both live on one Redis). ``packed``: as the bytes the wire sends (one server)."""
        ttl = self.ttl_ms()
        if packed:
            return packed_commands(records, ttl)
        return self.tuple_commands(records, ttl)

    @staticmethod
    def tuple_commands(records: Sequence[tuple[str, bytes, bool]], ttl: int) -> list[Command]:
        expiry = ("PX", ttl) if ttl else ()
        out: list[Command] = []
        for task_id, data, ready in records:
            out.append(("SET", meta_key(task_id), data, *expiry))
            if ready:
                # Waiters rotate this list, so its length does not matter: a task that became
                # ready twice (run again after its worker died) just leaves two elements.
                done = done_key(task_id)
                out.append(("RPUSH", done, b"1"))
                if ttl:
                    out.append(("PEXPIRE", done, ttl))
        return out

    def read(self, task_id: str) -> bytes | None:
        try:
            # No decode_responses on the client (connect.py): the reply is bytes.
            return cast("bytes | None", self.client.get(meta_key(task_id)))
        except (redis.exceptions.ConnectionError, *CLUSTER_UNAVAILABLE) as exc:
            raise BrokerError(f"cannot reach result store at {redact_url(self.url)}: {exc}") from None

    def read_many(self, task_ids: Sequence[str]) -> list[bytes | None]:
        if not task_ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.get(meta_key(task_id))
        return list(pipe.execute())

    def delete(self, task_id: str) -> None:
        self.client.delete(meta_key(task_id), done_key(task_id))

    def wait_ready(self, task_id: str, timeout: float) -> bool:
        key = done_key(task_id)
        try:
            # BLMOVE takes decimal seconds (Redis 6.0+), though redis-py annotates an int.
            wait = self.conns.wait(timeout, 0.01)
            return self.client.blmove(key, key, wait, "RIGHT", "LEFT") is not None
        except (redis.exceptions.ConnectionError, *CLUSTER_UNAVAILABLE) as exc:
            raise BrokerError(f"cannot reach result store at {redact_url(self.url)}: {exc}") from None

    def wait_and_read(self, task_id: str, timeout: float) -> bytes | None:
        # BLMOVE then GET in one pipeline: Redis answers the GET right after the BLMOVE unblocks,
        # so a waiter learns the result one round trip after it was stored.
        key = done_key(task_id)
        try:
            pipe = self.client.pipeline(transaction=False)
            if timeout > 0:  # decimal seconds: see wait_ready
                pipe.blmove(key, key, self.conns.wait(timeout, 0.01), "RIGHT", "LEFT")
            pipe.get(meta_key(task_id))
            value: bytes | None = pipe.execute()[-1]
            return value
        except (redis.exceptions.ConnectionError, *CLUSTER_UNAVAILABLE) as exc:
            raise BrokerError(f"cannot reach result store at {redact_url(self.url)}: {exc}") from None

    def close(self) -> None:
        self.conns.close()
