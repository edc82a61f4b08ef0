"""The I/O side of a pool process: stores results and acks finished messages in batches.

The task thread appends what each finished task needs written and goes on to the next task;
this thread writes everything that piled up in one batch (results first, then acks, so a task
is never acked without its result). Noop tasks get batched writes; a slow task's result is
written the moment it finishes, not when its batch ends.

It has its own broker and result-store connections: SQLite connections cannot be shared by
threads, and a Redis connection busy with a batch would otherwise stall the next fetch.
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

if TYPE_CHECKING:
    from ..app import Celery

logger = logging.getLogger("celeriac.worker")

Record = tuple[str, bytes, bool]


class Flusher:
    def __init__(self, app: Celery, consumer: str, queues: Sequence[str]) -> None:
        self.app = app
        self.consumer = consumer
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
        self._wake()

    def _wake(self) -> None:
        # This thread sets _idle under the lock before it checks for work, so either it sees
        # what was just appended, or we see _idle and wake it.
        if self._idle:
            with self._cond:
                self._cond.notify()

    def event(self, data: bytes | TaskEvent) -> None:
        """Queue one event; events are written after the results of the same batch."""
        self._events.append(data)
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

    def _apply(self, ops: deque[tuple[Any, ...]], events: list[bytes | TaskEvent]) -> None:
        """Apply ``ops`` in order, popping each once written, so a retry after a failure
        resumes where it stopped instead of repeating what already happened. Events ride
        along with the last batch of finished tasks (or go alone)."""
        while ops:
            if ops[0][0] == "finish":
                batch = []
                while ops and ops[0][0] == "finish":
                    batch.append(ops.popleft())
                last = not ops
                try:
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
                continue
            op = ops[0]
            kind = op[0]
            if kind == "retry":
                _, delivery, recs, (queue, body, priority, delay, key) = op
                if recs:
                    self.backend.write(recs)
                self.broker.enqueue(queue, body, priority=priority, delay=delay, key=key)
                if delivery is not None:
                    self.broker.ack([delivery])
            elif kind == "defer":
                self.broker.defer(op[1], op[2], op[3])
            elif kind in ("requeue", "dead"):
                if op[2]:
                    self.backend.write(op[2])
                if kind == "requeue":
                    self.broker.requeue([op[1]])
                else:
                    self.broker.dead_letter([op[1]], op[3])
            elif kind == "giveback":
                self.broker.requeue(op[1])
            ops.popleft()
        if events:
            self._write_events(events)
            events.clear()


def _drain(source: deque[Any], sink: Any) -> None:
    while True:
        try:
            sink(source.popleft())
        except IndexError:
            return
