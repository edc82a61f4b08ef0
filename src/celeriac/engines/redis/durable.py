"""The durability choice: enqueues that wait for replicas (Redis ``WAIT``) before they return.

Redis replicates asynchronously, so a master that dies a moment after it answered an enqueue
may take the message with it: the promoted replica never saw it. With
``broker_transport_options={'wait_replicas': 1, 'wait_timeout': 1.0}`` every enqueue (``delay``,
``send_many``, beat's sends, a task's retry) is followed by ``WAIT 1 1000`` in the same write, so
it costs one round trip (plus the replica's copy), not two, and ``delay()`` returns only once a
replica holds the message, or raises :class:`~celeriac.exceptions.NotReplicated`. On a Redis
Cluster each master replicates its own writes, so the ``WAIT`` goes after the writes of every
master the enqueue touched, in that master's own buffer (``ClusterWire.call_waiting``).

Only enqueues wait. What workers write (results, acks, requeues, lease renewals) is replicated
in the order it was written, and every such write is preceded on the master by the message it
concerns: a failover that loses an ack or a result leaves the message still leased on the
promoted replica, and it is redelivered (run again), never lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...brokers.base import redact_url
from ...exceptions import ConfigurationError, NotReplicated

DEFAULT_TIMEOUT = 1.0


class Durability:
    """How many replicas must confirm each enqueue, and how long to wait for them."""

    __slots__ = ("replicas", "timeout", "wait")

    def __init__(self, replicas: int, timeout: float) -> None:
        self.replicas, self.timeout = replicas, timeout
        self.wait = ("WAIT", replicas, max(1, round(timeout * 1000)))

    @classmethod
    def from_options(cls, transport: Mapping[str, Any] | None, socket_timeout: float | None,
                     setting: str = "broker_transport_options") -> Durability | None:
        """None when ``wait_replicas`` is unset or 0 (the default: no waiting)."""
        transport = transport or {}
        replicas = transport.get("wait_replicas", 0)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ConfigurationError(f"{setting}['wait_replicas'] must be a whole number >= 0, not {replicas!r}")
        timeout = transport.get("wait_timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            # WAIT with 0 blocks forever: an enqueue must not hang on a replica that is gone.
            raise ConfigurationError(f"{setting}['wait_timeout'] must be seconds > 0, not {timeout!r}")
        if replicas and socket_timeout and timeout >= socket_timeout:
            raise ConfigurationError(f"{setting}['wait_timeout'] ({timeout:g} s) must be shorter than "
                                     f"redis_socket_timeout ({socket_timeout:g} s)")
        return cls(replicas, float(timeout)) if replicas else None

    def check(self, acked: Any, url: str, count: int) -> None:
        """Raise unless ``acked`` (WAIT's reply) reaches ``replicas``."""
        if int(acked) >= self.replicas:
            return
        what = "the task was" if count == 1 else f"the {count} tasks were"
        raise NotReplicated(
            f"Redis at {redact_url(url)}: {what} queued on the master, but {int(acked)} of the {self.replicas} "
            f"replica(s) wait_replicas asks for confirmed within {self.timeout:g} s; it runs unless the master "
            "fails over before a replica copies it, when it is lost. Sending again may run it twice.")
