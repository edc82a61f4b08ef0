"""The I/O side of a pool process: stores results and acks finished messages in batches.

The task thread appends what each finished task needs written and goes on to the next task;
this thread writes everything that piled up in one batch (results first, then acks, so a task
is never acked without its result). Noop tasks get batched writes; a slow task's result is
written the moment it finishes, not when its batch ends.

It has its own broker and result-store connections: SQLite connections cannot be shared by
threads, and a Redis connection busy with a batch would otherwise stall the next fetch.

Fencing: operations are applied under the lease epoch their messages were fetched under (the
consumer pushes a marker when the epoch moves, which is rare, so no operation carries it). While the lease
word (worker/slots.py) says the lease surely held, writes go out as usual; otherwise finished
tasks go through ``Broker.finish_fenced`` and other operations first ask ``Broker.holding``, so
an attempt whose message was recovered and handed to another worker (this worker was paused
past its lease) never acks it, re-sends it, or replaces the other attempt's result.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..brokers.base import Delivery
from ..events import EVENT_LOG, EventCap, TaskEvent
from ..events import batch as batch_events
from ..exceptions import NotReplicated

if TYPE_CHECKING:
    from ..app import Celery
    from .slots import Slots

logger = logging.getLogger("celeriac.worker")

Record = tuple[str, bytes, bool]


class Flusher:
    def __init__(self, app: Celery, consumer: str, queues: Sequence[str], slots: Slots | None = None) -> None:
        self.app = app
        self.consumer = consumer
        self.slots = slots
        self._epoch = 0  # the lease epoch of what the consumer pushes now
        self._applying_epoch = 0  # ... and of the operations this thread applies now
        self.queues = list(queues)
        self.broker = app.new_broker()
        self.backend = app.new_backend()
        # Re-entrant: give_back() runs from a signal handler that may interrupt the task
        # thread while it holds this lock in _push().
        self._cond = threading.Condition(threading.RLock())
        # Appended by the task thread, drained by this one; deque ends are atomic, so the hot
        # path takes the lock only to wake this thread when it sleeps (``_idle``).
        self._ops: deque[tuple[Any, ...]] = deque()
        self._events: deque[bytes | TaskEvent] = deque()
        self._idle = False
        self._closing = False
        self._event_cap = EventCap.from_conf(app.conf)
        self._thread = threading.Thread(target=self._loop, name=f"flusher-{consumer}", daemon=True)
        self._thread.start()

    # -- called from the task thread ------------------------------------------------------------
    def _push(self, op: tuple[Any, ...]) -> None:
        self._ops.append(op)
        if self._idle:  # tested here, not in a call: four times per task
            self._wake()

    def fetched_under(self, epoch: int) -> None:
        """The consumer fetched under lease ``epoch``: what it pushes from now on belongs to it."""
        if epoch != self._epoch:
            self._epoch = epoch
            self._ops.append(("epoch", epoch))

    def _wake(self) -> None:
        # This thread sets _idle under the lock before it checks for work, so either it sees
        # what was just appended, or we see _idle and wake it.
        if self._idle:
            with self._cond:
                # Woken: until it is idle again (it checks for work after saying so), what is
                # appended meanwhile is seen without another notify (Condition.notify is Python).
                self._idle = False
                self._cond.notify()

    def event(self, data: bytes | TaskEvent) -> None:
        """Queue one event; events are written after the results of the same batch."""
        self._events.append(data)
        if self._idle:
            self._wake()

    def finish(self, delivery: Delivery, records: list[Record]) -> None:
        """Store ``records``, then ack ``delivery``."""
        self._push(("finish", delivery, records))

    def store(self, records: list[Record]) -> None:
        if records:
            self._push(("finish", None, records))

    def send_retry(self, delivery: Delivery | None, queue: str, body: bytes, priority: int, delay: float,
                   key: str, records: list[Record]) -> None:
        """Store RETRY, enqueue the next attempt, then ack this one: at least one always exists."""
        self._push(("retry", delivery, records, (queue, body, priority, delay, key)))

    def defer(self, delivery: Delivery, body: bytes, delay: float) -> None:
        self._push(("defer", delivery, body, delay))

    def requeue(self, delivery: Delivery, records: list[Record]) -> None:
        self._push(("requeue", delivery, records))

    def dead_letter(self, delivery: Delivery, reason: str, records: list[Record]) -> None:
        self._push(("dead", delivery, records, reason))

    def give_back(self, reserved: deque[Delivery]) -> None:
        """Return prefetched, never-started messages to their queues now (warm shutdown)."""
        taken = []
        while True:
            try:
                taken.append(reserved.pop())  # deque.pop is atomic against the task thread's popleft
            except IndexError:
                break
        if taken:
            self._push(("giveback", taken[::-1]))

    def barrier(self) -> threading.Event:
        """An event set once everything handed over before this call is written (as wait_idle,
        but it needs no quiet moment: later work does not hold it back)."""
        written = threading.Event()
        self._push(("barrier", None, written))
        return written

    def wait_idle(self, timeout: float) -> bool:
        """Whether everything handed over so far is written (results, acks, events), waiting up
        to ``timeout`` seconds for it; the write itself retries until the broker answers."""
        deadline = time.monotonic() + timeout
        while not (self._idle and not self._ops and not self._events):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        self.broker.close()
        self.backend.close()

    # -- this thread --------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                self._idle = True
                while not self._ops and not self._events and not self._closing:
                    self._cond.wait()
                self._idle = False
                closing = self._closing
            ops: deque[tuple[Any, ...]] = deque()
            events: list[bytes | TaskEvent] = []
            _drain(self._ops, ops.append)
            _drain(self._events, events.append)
            if not ops and not events and closing:
                return
            self._apply_with_retries(ops, events)

    def _write_events(self, events: list[bytes | TaskEvent]) -> None:
        # Events are best-effort: a broker hiccup drops them rather than delaying acks.
        try:
            data = batch_events(events)
            self.broker.log_append(EVENT_LOG, data, self._event_cap(data))
        except Exception as exc:
            logger.debug("dropped %d events: %s", len(events), exc)

    def _apply_with_retries(self, ops: deque[tuple[Any, ...]], events: list[bytes | TaskEvent]) -> None:
        for attempt in range(1, 1_000_000):
            try:
                self._apply(ops, events)
                return
            except Exception as exc:
                if self._closing and attempt >= 5:
                    # Unacked messages come back to the queue when our lease lapses: nothing lost.
                    logger.error("giving up writing %d results/acks at shutdown: %s", len(ops), exc)
                    return
                pause = min(5.0, 0.1 * 2 ** min(attempt, 6))
                logger.warning("cannot write results/acks (%s); retrying in %.1fs", exc, pause)
                time.sleep(pause)

    def _doubtful(self) -> bool:
        return self.slots is not None and self.slots.lease_doubtful(self._applying_epoch)

    def _lost(self, delivery: Delivery) -> bool:
        """True (and logged) if ``delivery`` is no longer this consumer's."""
        if self.broker.holding(self.consumer, [delivery]):
            return False
        logger.warning("Dropped what an attempt of message %s left to do: this worker's lease lapsed and the "
                       "message went to another worker", delivery.tag)
        return True

    def _finish_fenced(self, batch: list[tuple[Any, ...]]) -> None:
        dropped = self.broker.finish_fenced(self.consumer, [(op[1], op[2]) for op in batch], backend=self.backend)
        for delivery in dropped:
            ids = [r[0] for op in batch if op[1] is delivery for r in op[2]]
            logger.warning("Discarded the result of task %s: this worker's lease lapsed (it was paused or cut off) "
                           "and the message went to another worker, whose result stands",
                           ", ".join(ids) or delivery.tag)

    def _apply(self, ops: deque[tuple[Any, ...]], events: list[bytes | TaskEvent]) -> None:
        """Apply ``ops`` in order, popping each once written, so a retry after a failure
        resumes where it stopped instead of repeating what already happened. Events ride
        along with the last batch of finished tasks (or go alone)."""
        while ops:
            if ops[0][0] == "finish":
                batch = []
                while ops and ops[0][0] == "finish":
                    batch.append(ops.popleft())
                self._apply_finishes(batch, ops, events)
                continue
            op = ops[0]
            if op[0] == "epoch":
                self._applying_epoch = op[1]
            elif op[0] == "giveback" or op[1] is None or not self._doubtful() or not self._lost(op[1]):
                self._apply_one(op)
            ops.popleft()
        if events:
            self._write_events(events)
            events.clear()

    def _apply_finishes(self, batch: list[tuple[Any, ...]], ops: deque[tuple[Any, ...]],
                        events: list[bytes | TaskEvent]) -> None:
        """Finished tasks in one write; on failure they go back to the front of ``ops``."""
        last = not ops
        try:
            if self._doubtful():
                self._finish_fenced(batch)
                batch = []
            records = [r for op in batch for r in op[2]]
            acks = [op[1] for op in batch if op[1] is not None]
            data = batch_events(events) if last and events else None
            self.broker.finish(acks, backend=self.backend, records=records,
                               events=(EVENT_LOG, data, self._event_cap(data)) if data else None)
            if last:
                events.clear()
        except BaseException:
            ops.extendleft(reversed(batch))
            raise

    def _apply_one(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "retry":
            _, delivery, recs, (queue, body, priority, delay, key) = op
            try:
                self.broker.resend(delivery, queue, body, priority=priority, delay=delay, key=key,
                                   backend=self.backend, records=recs)
            except NotReplicated as exc:
                # The retry is on the master and the ack reaches replicas only after it: a
                # failover keeps both, or neither and the original comes back. Never send it twice.
                logger.warning("%s", exc)
                if delivery is not None:
                    self.broker.ack([delivery])
        elif kind == "defer":
            delivery = op[1]
            self.broker.resend(delivery, delivery.queue, op[2], priority=delivery.priority, delay=op[3])
        elif kind == "requeue":
            if op[2]:
                self.backend.write(op[2])
            self.broker.requeue([op[1]])
        elif kind == "dead":
            self.broker.dead_letter([op[1]], op[3], backend=self.backend, records=op[2])
        elif kind == "giveback":
            self.broker.requeue(op[1])
        elif kind == "barrier":
            op[2].set()


def _drain(source: deque[Any], sink: Any) -> None:
    while True:
        try:
            sink(source.popleft())
        except IndexError:
            return
