"""Giving back what the broker says a worker holds but the worker does not.

A broker that comes back without writes it had confirmed (a Redis restarted from an AOF that
lost its last second, a replica promoted before it had every ack) may still lease, to a live
consumer, a message that consumer acked: the ack is gone, the consumer forgot the message, and
its heartbeat keeps the lease alive. Nothing would give it back until the worker restarted.

The supervisor notices such a comeback by the broker's lineage (``Broker.lineage``, asked once
per lease, never per task) and tells its pool processes through the broker word in the slots
(worker/slots.py). Each pool process then compares, in the thread that fetches (so no fetch
races it) and once everything it handed its flusher is written, what the broker leases to it
with what it holds in memory (prefetched, running), and gives back the difference. The
supervisor does the same for consumers of pool processes that are gone, whose release may be
what the broker lost.

What comes back goes back uncharged: an orphan whose ack was lost had finished, so it runs once
more (a duplicate, as a failover allows), and a death it never had must not bring it nearer
the dead-letter cap.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence

from ..brokers.base import Broker, Delivery, worker_of

logger = logging.getLogger("celeriac.worker")

#: How a delivery is told apart from every other one the broker could lease (a Redis entry id
#: is unique only within its stream: its queue and priority).
Key = tuple[str, int, str]

#: Why a give-back happened, for its log line.
LOST_ACKS = "the broker came back without their acks (a restart or failover lost them); they run again"
BROKER_LOST = "the broker was unreachable, so a fetch reply or ack may be lost; they run again"


def key(delivery: Delivery) -> Key:
    return (delivery.queue, delivery.priority, delivery.tag)


def orphans(broker: Broker, consumer: str, queues: Sequence[str], keep: Collection[Key]) -> list[Delivery]:
    """What the broker leases to ``consumer`` in ``queues`` except ``keep`` (what it holds)."""
    return [d for name, d in broker.held(worker_of(consumer), queues) if name == consumer and key(d) not in keep]


def give_back(broker: Broker, consumer: str, queues: Sequence[str], keep: Iterable[Delivery] = (),
              why: str = LOST_ACKS) -> int:
    """Give back, uncharged, what the broker leases to ``consumer`` but it does not hold.

    The caller has made sure nothing it handed on is still unwritten, and that it fetches
    nothing meanwhile; ``keep`` is everything it holds. Returns how many went back."""
    lost = orphans(broker, consumer, queues, {key(d) for d in keep})
    if lost:
        # requeue only moves an entry still leased, so an orphan recovered meanwhile by someone
        # else is not put back twice.
        broker.requeue(lost)
        logger.warning("gave back %d message(s) leased to %s that it no longer held: %s", len(lost), consumer, why)
    return len(lost)


def give_back_gone(broker: Broker, worker: str, live: Collection[str], queues: Sequence[str]) -> int:
    """The supervisor's part: give back, uncharged, whatever the broker leases to consumers of
    ``worker`` that are not ``live`` (pool processes that ended, whose release it lost)."""
    gone: dict[str, int] = {}
    for name, _ in broker.held(worker, queues):
        if name not in live:
            gone[name] = gone.get(name, 0) + 1
    for consumer, count in sorted(gone.items()):
        broker.release(consumer, queues)  # uncharged: its deaths were charged when it ended
        logger.warning("gave back %d message(s) leased to %s, a pool process that is gone: the broker came "
                       "back without its release (a restart or failover lost it)", count, consumer)
    return sum(gone.values())
