"""The broker contract.

Every broker (Redis, SQLite, memory) implements this class and passes the same contract suite
(``tests/contract``). The docstrings below are the specification.

Vocabulary
----------
message     the bytes ``celeriac.message.encode`` made; the broker never looks inside them.
queue       a name. Each queue has ten priority levels; within a queue a higher priority is
            handed out first, and messages of one priority come out in the order they went in.
delivery    one hand-out of a message to a consumer (:class:`Delivery`). Until it is acked,
            requeued or dead-lettered the message is *leased* to that consumer.
worker      one *incarnation* of a worker: ``"<name>#<boot id>"``. A worker restarted under
            the same name is a new incarnation, so its heartbeat never keeps its dead
            predecessor's leases alive, and two live workers that share a name are told apart.
            The registry (:meth:`Broker.workers`) shows the name and the incarnation.
consumer    ``"<worker>/<suffix>"``: one fetching process of a worker. The lease of every
            delivery held by any consumer of a worker lasts while the worker heartbeats
            (:meth:`Broker.heartbeat`); there is no per-message visibility timeout, so a task
            may run for hours without being handed out twice.
running     the deliveries a worker last reported as started (with its heartbeat). When a
            worker dies only those are charged a redelivery: prefetched messages that never
            started are innocent of the death and go back uncharged.
delayed     a message enqueued with ``delay > 0`` waits in the broker (never in a worker) and
            becomes ready when the broker's clock reaches its due time (:meth:`promote`).
dead letter a message taken out of circulation with a reason: undecodable, unknown task,
            rejected, or handed out more than ``max_redeliveries`` times to consumers that died.

Clocks: lease expiry and due times are judged by the broker's clock (:meth:`now`), so workers
with skewed clocks still agree.

Stalls: a lease that lapsed while the broker itself heard from nobody (the broker was paused,
overloaded, or unreachable from every worker) proves no death. When a heartbeat arrives after
such a silence (longer than half a lease) every live lease is extended by one lease before it
counts, and recovery refuses to run while nobody has heartbeated for that long or while the
recovering worker's own lease is not live.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from .coordination import Coordination

PRIORITY_LEVELS = 10  # 0..9, higher first, as on RabbitMQ


def clamp_priority(priority: int | None) -> int:
    if priority is None:
        return 0
    return 0 if priority < 0 else 9 if priority > 9 else int(priority)


class Delivery(msgspec.Struct, frozen=True):
    """One message handed to one consumer.

    ``tag`` is the broker's handle for this hand-out (opaque to callers). ``redeliveries`` counts
    earlier hand-outs of the same message whose consumer died before finishing it.

    A frozen Struct rather than a frozen dataclass: one is made per task, and the dataclass's
    ``__init__`` (Python, through ``object.__setattr__``) cost 8,700 instructions against 1,000.
    """

    queue: str
    priority: int
    body: bytes
    tag: str
    redeliveries: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message out of circulation, with why."""

    queue: str
    id: str
    body: bytes
    reason: str
    time: float


@dataclass(slots=True)
class QueueStats:
    """What one queue holds. ``ready`` has one count per priority level (index = priority)."""

    name: str
    ready: list[int] = field(default_factory=lambda: [0] * PRIORITY_LEVELS)
    delayed: int = 0
    unacked: int = 0
    dead: int = 0

    @property
    def ready_total(self) -> int:
        return sum(self.ready)


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A delayed message and the broker time at which it becomes ready."""

    queue: str
    priority: int
    due: float
    key: str
    body: bytes


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker as the registry sees it: ``info`` is whatever the worker last published.
    ``name`` is the worker's name (``-n``); ``incarnation`` the registry key (``name#boot``)."""

    name: str
    info: bytes
    alive: bool
    last_seen: float
    incarnation: str = ""


#: What :meth:`Broker.heartbeat` found.
BEAT_OK = "ok"
#: The lease had lapsed before this beat: what the worker held may have been handed to others.
BEAT_LAPSED = "lapsed"
#: The broker had no record of a worker that registered before: it lost its data (a Redis
#: restarted without persistence, or flushed). Tasks queued before may be gone.
BEAT_FORGOTTEN = "forgotten"


class Broker(Coordination):
    """A message store with leases, plus the coordination part (:class:`Coordination`) every
    broker also implements. All methods are safe to call from several processes."""

    #: The URL scheme(s) this broker serves.
    schemes: tuple[str, ...] = ()

    def __init__(self, url: str, *, max_redeliveries: int = 3, lease_seconds: float = 6.0) -> None:
        self.url = url
        self.max_redeliveries = max_redeliveries
        self.lease_seconds = lease_seconds

    @property
    def worker_retention(self) -> float:
        """Seconds a worker that stopped heartbeating stays listed (offline) by :meth:`workers`."""
        return max(300.0, 10 * self.lease_seconds)

    @property
    def stall_seconds(self) -> float:
        """A silence longer than this (no heartbeat from any worker) means the broker, not the
        workers, was away: live workers beat every third of a lease, so only a stall of the
        broker or of every worker at once leaves such a gap."""
        return self.lease_seconds / 2

    # -- producing ------------------------------------------------------------------------
    @abc.abstractmethod
    def enqueue(self, queue: str, body: bytes, *, priority: int = 0, delay: float = 0.0,
                key: str = "") -> None:
        """Store ``body`` in ``queue``. Returns once the message is durable as the broker allows.

        ``delay > 0`` stores it as delayed, ready ``delay`` seconds after the broker's now.
        ``key`` (the task id) identifies a delayed message for listing and removal.
        Raises BrokerFull (nothing written) when the broker has no room.
        """

    def enqueue_many(self, items: Iterable[tuple[str, bytes, int, float, str]]) -> None:
        """Store many ``(queue, body, priority, delay, key)`` at once. Implementations batch."""
        for queue, body, priority, delay, key in items:
            self.enqueue(queue, body, priority=priority, delay=delay, key=key)

    # -- consuming ------------------------------------------------------------------------
    @abc.abstractmethod
    def fetch(self, queues: Sequence[str], consumer: str, count: int, timeout: float) -> list[Delivery]:
        """Lease up to ``count`` ready messages to ``consumer``.

        Queues are served in the order given; within a queue, higher priority first, then
        oldest first. Blocks up to ``timeout`` seconds while nothing is ready (``0``: never
        blocks) and returns an empty list if nothing came. A message is never leased to two
        consumers at once.
        """

    @abc.abstractmethod
    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Finish these deliveries: their messages are gone for good."""

    @abc.abstractmethod
    def requeue(self, deliveries: Sequence[Delivery], *, delay: float = 0.0) -> None:
        """Give these deliveries back: each message is ready again (after ``delay``) and is no
        longer leased. Does not count as a redelivery (the caller chose to give it back)."""

    @abc.abstractmethod
    def dead_letter(self, deliveries: Sequence[Delivery], reason: str, *, backend: Any = None,
                    records: Sequence[tuple[str, bytes, bool]] = ()) -> None:
        """Move these deliveries' messages to their queue's dead letters with ``reason``. The
        message moved is the one the broker holds: a delivery known only by its tag (an empty
        body, as the supervisor knows a killed process's task) is dead-lettered whole.

        ``records`` (the tasks' final state: FAILURE, REJECTED) are stored in ``backend`` first,
        in the same transaction where the broker holds the results (SQLite): apart, a process
        killed between the two left a failed task recorded but leased, to run again."""

    def finish(self, deliveries: Sequence[Delivery], *, backend: Any = None,
               records: Sequence[tuple[str, bytes, bool]] = (), events: tuple[str, bytes, int] | None = None) -> None:
        """Store ``records`` in ``backend``, then ack ``deliveries``, then append ``events``
        (``(log, data, maxlen)``), in that order, so nothing is acked before its result is
        stored. Implementations may do all three in one round trip when the result store lives
        in the same server."""
        if records:
            backend.write(records)
        if deliveries:
            self.ack(deliveries)
        if events is not None:
            self.log_append(*events)

    def finish_fenced(self, consumer: str, items: Sequence[tuple[Delivery | None, Sequence[tuple[str, bytes, bool]]]],
                      *, backend: Any = None) -> list[Delivery]:
        """:meth:`finish` for a worker that is not sure its lease held: each ``(delivery,
        records)`` is stored and acked only if ``delivery`` is still leased to ``consumer``, so
        an attempt whose message went to another worker never replaces that worker's result.
        Items without a delivery (already acked before running) are stored as they are.
        Returns the deliveries dropped.

        This default checks, then writes, then acks: a lease that lapses between the check and
        the write can still let a stale result through. Brokers that hold the results in the
        same store do all three atomically."""
        held = set(d.tag for d in self.holding(consumer, [d for d, _ in items if d is not None]))
        kept = [(d, recs) for d, recs in items if d is None or d.tag in held]
        records = [r for _, recs in kept for r in recs]
        if records:
            backend.write(records)
        acks = [d for d, _ in kept if d is not None]
        if acks:
            self.ack(acks)
        return [d for d, _ in items if d is not None and d.tag not in held]

    def resend(self, delivery: Delivery | None, queue: str, body: bytes, *, priority: int = 0, delay: float = 0.0,
               key: str = "", backend: Any = None, records: Sequence[tuple[str, bytes, bool]] = ()) -> None:
        """Replace ``delivery`` by a new message: store ``records`` in ``backend``, queue ``body``
        (a retry's next attempt, a rate-limited start moved to its slot), then ack ``delivery``
        (``None``: already acked before the task ran).

        The new message and the ack must not come apart: a process killed between the two would
        have the old message redelivered next to the new one, two chains of the same task from
        then on. Implementations do both in one step (SQLite, memory: always; Redis: when it
        waits for no replica, in one round trip). This default, for the rest, queues first, so
        a crash leaves both (at least once), never neither."""
        if records:
            backend.write(records)
        self.enqueue(queue, body, priority=priority, delay=delay, key=key)
        if delivery is not None:
            self.ack([delivery])

    # -- leases and recovery --------------------------------------------------------------
    @abc.abstractmethod
    def heartbeat(self, worker: str, info: bytes, queues: Sequence[str], *,
                  running: Sequence[Delivery] = (), first: bool = False) -> str:
        """Say ``worker`` is alive for another ``lease_seconds``; extends the lease of every
        delivery held by its consumers and records ``info`` in the worker registry.
        ``queues`` are the queues its consumers read, so recovery knows where to look;
        ``running`` the deliveries its processes have started (only those are charged a
        redelivery if it dies); ``first`` is True for the worker's first beat.

        Returns :data:`BEAT_OK`, :data:`BEAT_LAPSED` (the lease had lapsed, so what the worker
        held may already run elsewhere) or :data:`BEAT_FORGOTTEN` (not ``first``, yet the
        broker had no record of the worker: it lost its data)."""

    @abc.abstractmethod
    def deregister(self, worker: str) -> None:
        """``worker`` stopped cleanly: drop it from the registry (its leases must be empty)."""

    @abc.abstractmethod
    def recover(self, worker: str | None = None) -> list[Delivery]:
        """Return to their queues the messages leased by workers whose lease expired.

        ``worker`` is the caller's own incarnation: nothing is recovered while its own lease is
        not live (a worker that was paused or cut off must not judge others), nor while the
        broker has heard no heartbeat for half a lease (it may just have stalled).

        The deliveries the dead worker last reported ``running`` count one redelivery; one past
        ``max_redeliveries`` is dead-lettered instead, with a reason starting
        ``"redelivered N times"`` (N = redeliveries counted, so ``max_redeliveries + 1``).
        Prefetched deliveries go back uncharged. Safe to run from many workers at once: each
        lost message is recovered exactly once. Returns the deliveries dead-lettered, so the
        caller can record why.
        """

    @abc.abstractmethod
    def evict(self, worker: str) -> list[Delivery]:
        """Recover ``worker``'s messages now, without waiting for its lease: the caller proved
        it dead (a restart under the same name found its predecessor's process gone). Charges
        as :meth:`recover` does; returns the deliveries dead-lettered."""

    @abc.abstractmethod
    def holding(self, consumer: str, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """The subset of ``deliveries`` still leased to ``consumer`` (not recovered and handed
        to someone else meanwhile). Asked before a prefetched task starts when the worker is
        not sure its lease held."""

    @abc.abstractmethod
    def release(self, consumer: str, queues: Sequence[str], *, charged: Sequence[Delivery] = ()) -> list[Delivery]:
        """Give back every delivery ``consumer`` holds in ``queues`` (its process is gone).

        ``charged`` deliveries were running when the process died: they count one redelivery
        and are dead-lettered past the cap; the rest (prefetched, never started) go back
        without a charge. Returns the deliveries dead-lettered.
        """

    @abc.abstractmethod
    def held(self, worker: str, queues: Sequence[str]) -> list[tuple[str, Delivery]]:
        """Every ``(consumer, delivery)`` leased to a consumer of ``worker`` in ``queues``."""

    def lineage(self) -> str | None:
        """What names the store's current history: it changes when the broker may have come
        back without writes it had confirmed (a Redis restarted from an older snapshot or AOF,
        a replica promoted before it had every write), and stays the same otherwise. A worker
        that sees it change gives back what the broker says it holds but it no longer does (an
        ack the broker lost). ``None``: this broker never loses a confirmed write while a worker
        using it lives (SQLite loses commits only with its machine, and its workers with it;
        memory lives and dies with its process). Not called per task."""
        return None

    # -- delayed messages -----------------------------------------------------------------
    @abc.abstractmethod
    def promote(self, queues: Sequence[str], limit: int = 1000) -> float | None:
        """Make due delayed messages of ``queues`` ready. Returns seconds until the next one is
        due (``None`` when none wait). Atomic: a message is promoted exactly once even when
        every worker calls this."""

    @abc.abstractmethod
    def scheduled(self, queues: Sequence[str], limit: int = 100) -> list[Scheduled]:
        """Delayed messages of ``queues``, soonest first."""

    @abc.abstractmethod
    def remove_scheduled(self, queue: str, key: str) -> bool:
        """Drop the delayed message ``key`` from ``queue``; True if it was there."""

    def reschedule(self, queue: str, key: str, delay: float) -> bool:
        """Make the delayed message ``key`` of ``queue`` due ``delay`` seconds after the broker's
        now (``0``: due at once, ready at the next :meth:`promote`); True if it was there.
        Atomic: the message is never both at its old and its new due time, and a message
        already promoted is left alone (False), so calling this twice is harmless."""
        raise NotImplementedError(f"{type(self).__name__} cannot reschedule delayed messages")

    # -- inspection and maintenance -------------------------------------------------------
    @abc.abstractmethod
    def stats(self, queues: Sequence[str]) -> list[QueueStats]:
        """Depth per queue and priority, delayed, leased and dead-letter counts."""

    @abc.abstractmethod
    def purge(self, queues: Sequence[str]) -> int:
        """Drop ready and delayed messages (never leased ones). Returns how many went."""

    @abc.abstractmethod
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Dead letters of ``queue``, oldest first."""

    @abc.abstractmethod
    def retry_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        """Put dead letters (all, or those ``ids``) back in their queue with a fresh count."""

    @abc.abstractmethod
    def drop_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        """Delete dead letters (all, or those ``ids``)."""

    @abc.abstractmethod
    def queues(self) -> list[str]:
        """Every queue name that has ever held a message, sorted."""

    @abc.abstractmethod
    def workers(self) -> list[WorkerRecord]:
        """The worker registry: every worker that heartbeated recently, alive or not."""

    # -- lifecycle ------------------------------------------------------------------------
    def check(self, *, allow_evicting: bool = False) -> list[str]:
        """Warnings about the broker's set-up for the worker banner. May raise
        ConfigurationError for set-ups that would lose messages."""
        return []

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The broker object is unusable afterwards."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact_url(self.url)}>"


def redact_url(url: str) -> str:
    """``redis://:secret@host`` -> ``redis://:***@host`` for logs and banners; each part of a
    ``;``-joined Sentinel URL alike."""
    if ";" in url:
        return ";".join(redact_url(part) for part in url.split(";"))
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, colon, _password = creds.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


def worker_name(incarnation: str) -> str:
    """The name of a worker incarnation: ``"celeriac@host#1a2b"`` -> ``"celeriac@host"``."""
    name, sep, _ = incarnation.rpartition("#")
    return name if sep else incarnation


def worker_of(consumer: str) -> str:
    """The worker a consumer name belongs to: ``"<worker>/<suffix>"`` -> ``"<worker>"``."""
    worker, sep, _ = consumer.rpartition("/")
    return worker if sep else consumer
