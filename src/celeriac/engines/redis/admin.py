"""The Redis broker off the per-task path: queue statistics, purge, the known queues, the
server's lineage (to notice a restart or failover) and the start-up check of its settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis

from ...brokers.base import QueueStats
from ...exceptions import ConfigurationError
from .coord import translate_errors
from .layout import GROUP, RedisLayout


class RedisAdmin(RedisLayout):
    """Inspection and maintenance of queues and of the server(s)."""

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
    def queues(self) -> list[str]:
        return sorted(m.decode() for m in cast("set[bytes]", self.client.smembers("celeriac:queues")))

    @translate_errors
    def lineage(self) -> str | None:
        # run_id changes when the server restarts (it may have reloaded an older AOF or
        # snapshot); master_replid when a replica is promoted (it may lack the last writes). A
        # cluster's is its masters', so a failover of any of them shows.
        if self.cluster:
            try:
                return ",".join(sorted(f"{node.name}={node.redis_connection.info('server').get('run_id', '')}"
                                       for node in self.client.get_primaries()))
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                # A master went away: read the slot map again, so the next look asks the one
                # promoted in its place (a direct call to a node does not refresh it).
                self.client.nodes_manager.initialize()
                raise
        pipe = self.client.pipeline(transaction=False)
        pipe.info("server")
        pipe.info("replication")
        server, replication = pipe.execute()
        return f"{server.get('run_id', '')}:{replication.get('master_replid', '')}"

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
