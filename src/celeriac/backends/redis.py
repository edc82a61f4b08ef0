"""The Redis result store.

``celeriac-task-meta-<id>`` holds the meta record (JSON), as Celery's key name suggests to
anyone reading Redis by hand. A ready state also pushes one element onto
``celeriac-task-done-{<id>}``; waiters rotate that list with BLMOVE (pop and push back in one
step), so every waiter wakes, one that starts after the write wakes at once, and nobody polls.
Both keys expire together with ``result_expires``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import redis

from ..brokers.base import redact_url
from ..exceptions import BrokerError
from .base import ResultBackend

STORE = """
-- KEYS[1] meta key, KEYS[2] done list; ARGV[1] meta, ARGV[2] ttl ms (0: none), ARGV[3] '1' if ready
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[2])
  redis.call('RPUSH', KEYS[2], '1')
  if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
end
return 1
"""


def meta_key(task_id: str) -> str:
    return f"celeriac-task-meta-{{{task_id}}}"


def done_key(task_id: str) -> str:
    return f"celeriac-task-done-{{{task_id}}}"


class RedisBackend(ResultBackend):
    schemes = ("redis", "rediss", "unix")

    def __init__(self, url: str, *, expires: float | None = 86400.0, **_: Any) -> None:
        super().__init__(url, expires=expires)
        self._pid = os.getpid()
        self._client = redis.Redis.from_url(url, socket_connect_timeout=5)
        self._store = self._client.register_script(STORE)

    @property
    def client(self) -> redis.Redis:
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._client = redis.Redis.from_url(self.url, socket_connect_timeout=5)
        return self._client

    def _ttl_ms(self) -> int:
        return int(self.expires * 1000) if self.expires else 0

    def write(self, records: Sequence[tuple[str, bytes, bool]]) -> None:
        try:
            client = self.client
            ttl = self._ttl_ms()
            if len(records) == 1:
                task_id, data, ready = records[0]
                self._store(keys=[meta_key(task_id), done_key(task_id)],
                            args=[data, ttl, "1" if ready else "0"], client=client)
                return
            pipe = client.pipeline(transaction=False)
            for task_id, data, ready in records:
                self._store(keys=[meta_key(task_id), done_key(task_id)],
                            args=[data, ttl, "1" if ready else "0"], client=pipe)
            pipe.execute()
        except redis.exceptions.ConnectionError as exc:
            raise BrokerError(f"cannot reach result store at {redact_url(self.url)}: {exc}") from None

    def read(self, task_id: str) -> bytes | None:
        try:
            value: bytes | None = self.client.get(meta_key(task_id))
            return value
        except redis.exceptions.ConnectionError as exc:
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
            return self.client.blmove(key, key, max(timeout, 0.01), "RIGHT", "LEFT") is not None
        except redis.exceptions.ConnectionError as exc:
            raise BrokerError(f"cannot reach result store at {redact_url(self.url)}: {exc}") from None

    def close(self) -> None:
        self._client.close()
