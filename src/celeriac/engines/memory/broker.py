"""An in-process broker for users' unit tests and eager mode.

Everything lives in a store held by ``store.py``, so every ``MemoryBroker`` of one
process built from the same URL sees the same messages: ``memory://`` is the process-wide default
store, ``memory://name`` a named one. An app's broker and the broker a test builds therefore agree
without passing objects around. Nothing survives the process.

One :class:`threading.Condition` guards a store. Whatever makes a message ready (enqueue, requeue,
recovery, promotion, a retried dead letter) or appends to a log notifies it, so a blocking
:meth:`MemoryBroker.fetch` or :meth:`MemoryBroker.log_read` sleeps until then instead of polling.

The clock is ``time.time()``; leases and due times are judged by it.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ...brokers.base import (
    BEAT_FORGOTTEN,
    BEAT_LAPSED,
    BEAT_OK,
    PRIORITY_LEVELS,
    Broker,
    DeadLetter,
    Delivery,
    QueueStats,
    Scheduled,
    WorkerRecord,
    clamp_priority,
    worker_name,
    worker_of,
)
from .coord import MemoryCoordination
from .store import Message, Store, WorkerEntry, store_for

logger = logging.getLogger("celeriac.broker")


class MemoryBroker(MemoryCoordination, Broker):
    """A broker in this process's memory, shared by URL name (see the module docstring)."""

    schemes = ("memory",)

    def __init__(self, url: str = "memory://", *, max_redeliveries: int = 3,
                 lease_seconds: float = 6.0) -> None:
        super().__init__(url, max_redeliveries=max_redeliveries, lease_seconds=lease_seconds)
        self._store: Store | None = store_for(url)
    def flush(self) -> None:
        """Forget everything in this broker's store (for tests that reuse a store name)."""
        st = self._st
        with st.cond:
            fresh = Store(cond=st.cond)
            for name in ("ready", "delayed", "leased", "dead", "known", "workers", "kv", "maps",
                         "logs", "last_log_id", "log_expires", "rates", "chords"):
                setattr(st, name, getattr(fresh, name))

    # -- producing ------------------------------------------------------------------------
    def enqueue(self, queue: str, body: bytes, *, priority: int = 0, delay: float = 0.0,
                key: str = "") -> None:
        self.enqueue_many([(queue, body, priority, delay, key)])

    def enqueue_many(self, items: Iterable[tuple[str, bytes, int, float, str]]) -> None:
        st = self._st
        with st.cond:
            now = time.time()
            for queue, body, priority, delay, key in items:
                msg = Message(next(st.ids), queue, clamp_priority(priority), body, key)
                st.known.add(queue)
                if delay > 0:
                    st.make_delayed(msg, now + delay)
                else:
                    st.make_ready(msg)
            st.cond.notify_all()

    # -- consuming ------------------------------------------------------------------------
    def fetch(self, queues: Sequence[str], consumer: str, count: int, timeout: float) -> list[Delivery]:
        st = self._st
        if not queues or count <= 0:
            return []
        deadline = time.monotonic() + max(timeout, 0.0)
        with st.cond:
            while True:
                got = self._take(st, queues, consumer, count)
                remaining = deadline - time.monotonic()
                if got or remaining <= 0:
                    return got
                st.cond.wait(remaining)

    def _take(self, st: Store, queues: Sequence[str], consumer: str, count: int) -> list[Delivery]:
        out: list[Delivery] = []
        lease_until = time.time() + self.lease_seconds
        for queue in queues:
            heap = st.ready.get(queue)
            while heap and len(out) < count:
                _, _, msg = heapq.heappop(heap)
                msg.handouts += 1
                msg.consumer, msg.lease_until = consumer, lease_until
                st.leased[msg.tag] = msg
                out.append(msg.delivery())
        return out

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        st = self._st
        with st.cond:
            for delivery in deliveries:
                st.leased.pop(delivery.tag, None)

    def requeue(self, deliveries: Sequence[Delivery], *, delay: float = 0.0) -> None:
        st = self._st
        with st.cond:
            now = time.time()
            for delivery in deliveries:
                msg = st.leased.pop(delivery.tag, None)
                if msg is None:
                    continue
                if delay > 0:
                    st.make_delayed(msg, now + delay)
                else:
                    st.make_ready(msg)
            st.cond.notify_all()

    def dead_letter(self, deliveries: Sequence[Delivery], reason: str, *, backend: Any = None,
                    records: Sequence[tuple[str, bytes, bool]] = ()) -> None:
        if records:
            backend.write(records)
        st = self._st
        with st.cond:
            now = time.time()
            for delivery in deliveries:
                msg = st.leased.pop(delivery.tag, None)
                if msg is not None:
                    st.bury(msg, reason, now)

    def resend(self, delivery: Delivery | None, queue: str, body: bytes, *, priority: int = 0, delay: float = 0.0,
               key: str = "", backend: Any = None, records: Sequence[tuple[str, bytes, bool]] = ()) -> None:
        if records:
            backend.write(records)
        with self._st.cond:  # one critical section: the new message and the ack happen together
            self.enqueue_many([(queue, body, priority, delay, key)])
            if delivery is not None:
                self.ack([delivery])

    # -- leases and recovery --------------------------------------------------------------
    def heartbeat(self, worker: str, info: bytes, queues: Sequence[str], *,
                  running: Sequence[Delivery] = (), first: bool = False) -> str:
        st = self._st
        with st.cond:
            now = time.time()
            if st.pulse and now - st.pulse > self.stall_seconds:  # see Broker: stalls
                for entry in st.workers.values():
                    entry.expires = max(entry.expires, now + self.lease_seconds)
            st.pulse = now
            previous = st.workers.get(worker)
            st.workers[worker] = WorkerEntry(info, now, now + self.lease_seconds, tuple(queues),
                                             frozenset(d.tag for d in running))
            if previous is None:
                return BEAT_OK if first else BEAT_FORGOTTEN
            return BEAT_LAPSED if previous.recovered or previous.expires < now else BEAT_OK

    def deregister(self, worker: str) -> None:
        st = self._st
        with st.cond:
            st.workers.pop(worker, None)

    def recover(self, worker: str | None = None) -> list[Delivery]:
        st = self._st
        with st.cond:
            now = time.time()
            if worker is not None:
                mine = st.workers.get(worker)
                if mine is None or mine.expires < now or mine.recovered:
                    return []
            if st.pulse and now - st.pulse > self.stall_seconds:
                return []
            expired = []
            for msg in st.leased.values():
                record = st.workers.get(worker_of(msg.consumer))
                if max(msg.lease_until, record.expires if record else 0.0) < now:
                    expired.append(msg)
            for name, record in st.workers.items():
                if record.expires < now and not record.recovered:
                    record.recovered = True
                    logger.warning("worker %s stopped heartbeating; its tasks went back to their queues", name)
            return self._take_back(st, expired, now)

    def _take_back(self, st: Store, messages: list[Message], now: float) -> list[Delivery]:
        dead = []
        for msg in messages:
            record = st.workers.get(worker_of(msg.consumer))
            started = record is not None and msg.tag in record.running
            if st.charge(msg, self.max_redeliveries, now, started):
                dead.append(msg.delivery())
        if messages:
            st.cond.notify_all()
        return dead

    def evict(self, worker: str) -> list[Delivery]:
        st = self._st
        with st.cond:
            now = time.time()
            record = st.workers.get(worker)
            if record is not None:
                record.recovered, record.expires = True, min(record.expires, now)
            mine = [m for m in st.leased.values() if worker_of(m.consumer) == worker]
            return self._take_back(st, mine, now)

    def holding(self, consumer: str, deliveries: Sequence[Delivery]) -> list[Delivery]:
        st = self._st
        with st.cond:
            return [d for d in deliveries if (m := st.leased.get(d.tag)) is not None and m.consumer == consumer]

    def release(self, consumer: str, queues: Sequence[str], *, charged: Sequence[Delivery] = ()) -> list[Delivery]:
        st = self._st
        started = {d.tag for d in charged}
        with st.cond:
            now = time.time()
            dead = []
            mine = [m for m in st.leased.values() if m.consumer == consumer and m.queue in queues]
            for msg in mine:
                if st.charge(msg, self.max_redeliveries, now, msg.tag in started):
                    dead.append(msg.delivery())
            if mine:
                st.cond.notify_all()
            return dead

    def held(self, worker: str, queues: Sequence[str]) -> list[tuple[str, Delivery]]:
        st = self._st
        with st.cond:
            return [(m.consumer, m.delivery()) for m in sorted(st.leased.values(), key=lambda m: m.id)
                    if worker_of(m.consumer) == worker and m.queue in queues]

    # -- delayed messages -----------------------------------------------------------------
    def promote(self, queues: Sequence[str], limit: int = 1000) -> float | None:
        st = self._st
        with st.cond:
            now = time.time()
            due: list[tuple[float, int, Message]] = []
            for queue in queues:
                heap = st.delayed.get(queue)
                while heap and heap[0][0] <= now:
                    due.append(heapq.heappop(heap))
            due.sort(key=lambda entry: entry[:2])
            for entry in due[limit:]:
                heapq.heappush(st.delayed[entry[2].queue], entry)
            for _, _, msg in due[:limit]:
                # A promoted message joins the back of its priority, as if enqueued now.
                msg.id = next(st.ids)
                st.make_ready(msg)
            if due:
                st.cond.notify_all()
            upcoming = [st.delayed[q][0][0] for q in queues if st.delayed.get(q)]
            return max(0.0, min(upcoming) - now) if upcoming else None

    def scheduled(self, queues: Sequence[str], limit: int = 100) -> list[Scheduled]:
        st = self._st
        with st.cond:
            entries = sorted((e for q in queues for e in st.delayed.get(q, ())), key=lambda e: e[:2])
            return [Scheduled(m.queue, m.priority, due, m.key, m.body) for due, _, m in entries[:limit]]

    def remove_scheduled(self, queue: str, key: str) -> bool:
        st = self._st
        with st.cond:
            heap = st.delayed.get(queue, [])
            kept = [entry for entry in heap if entry[2].key != key]
            if len(kept) == len(heap):
                return False
            heapq.heapify(kept)
            st.delayed[queue] = kept
            return True

    def reschedule(self, queue: str, key: str, delay: float) -> bool:
        st = self._st
        with st.cond:
            heap = st.delayed.get(queue, [])
            found = [entry for entry in heap if entry[2].key == key]
            if not found:
                return False
            due = time.time() + max(delay, 0.0)
            for index, entry in enumerate(heap):
                if entry[2].key == key:
                    entry[2].due = due
                    heap[index] = (due, entry[1], entry[2])
            heapq.heapify(heap)
            st.cond.notify_all()
            return True

    # -- inspection and maintenance -------------------------------------------------------
    def stats(self, queues: Sequence[str]) -> list[QueueStats]:
        st = self._st
        with st.cond:
            out = []
            for queue in queues:
                ready = [0] * PRIORITY_LEVELS
                for _, _, msg in st.ready.get(queue, ()):
                    ready[msg.priority] += 1
                unacked = sum(1 for m in st.leased.values() if m.queue == queue)
                out.append(QueueStats(queue, ready, len(st.delayed.get(queue, ())), unacked,
                                      len(st.dead.get(queue, ()))))
            return out

    def purge(self, queues: Sequence[str]) -> int:
        st = self._st
        with st.cond:
            gone = 0
            for queue in queues:
                gone += len(st.ready.pop(queue, ())) + len(st.delayed.pop(queue, ()))
            return gone

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        st = self._st
        with st.cond:
            return [letter for letter, _ in list(st.dead.get(queue, {}).values())[:limit]]

    def retry_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        st = self._st
        with st.cond:
            letters = st.dead.get(queue, {})
            chosen = list(letters) if ids is None else [i for i in ids if i in letters]
            for letter_id in chosen:
                _, msg = letters.pop(letter_id)
                msg.id, msg.redeliveries = next(st.ids), 0
                st.make_ready(msg)
            if chosen:
                st.cond.notify_all()
            return len(chosen)

    def drop_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        st = self._st
        with st.cond:
            letters = st.dead.get(queue, {})
            chosen = list(letters) if ids is None else [i for i in ids if i in letters]
            for letter_id in chosen:
                del letters[letter_id]
            return len(chosen)

    def queues(self) -> list[str]:
        st = self._st
        with st.cond:
            return sorted(st.known)

    def workers(self) -> list[WorkerRecord]:
        st = self._st
        with st.cond:
            now = time.time()
            horizon = now - self.worker_retention
            for name in [n for n, w in st.workers.items() if w.last_seen < horizon]:
                del st.workers[name]
            return [WorkerRecord(worker_name(name), w.info, w.expires >= now and not w.recovered, w.last_seen, name)
                    for name, w in sorted(st.workers.items())]
    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        # The store stays: other brokers of this process built from the same URL still use it.
        self._store = None
