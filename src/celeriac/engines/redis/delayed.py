"""The Redis broker's delayed messages: a sorted set of due times per queue, promoted to the
streams when due, and the wake-up list that ends a promoter's sleep early."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from ...brokers.base import Scheduled
from .coord import translate_errors
from .layout import BLOCK_GRANULARITY, RedisLayout


class RedisDelayed(RedisLayout):
    """Delayed messages: promote, wait for the next, list, remove and reschedule them."""

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
