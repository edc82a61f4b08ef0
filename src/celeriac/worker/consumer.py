"""A pool process: its own consumer, fetching, running and finishing tasks against the broker.

The per-task path crosses no process boundary: this process leases a batch of messages
(``prefetch``), runs them one by one, and hands each finished task's records to its
:class:`~celeriac.worker.flusher.Flusher` thread, which stores results and acks in batches
while the next task already runs. The supervisor only watches (slots, leases, limits).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import message, signals, states
from ..brokers.base import Delivery
from ..brokers.clock import BrokerClock
from ..canvas import followups
from ..events import TaskEvent, call_json, safe_repr
from ..exceptions import BrokerError, DecodeError, NotRegistered, SignatureError, SoftTimeLimitExceeded
from ..execution import (
    IGNORED,
    Outcome,
    execute,
    outcome_meta,
    request_for,
    send_postrun,
)
from . import reconcile
from .flusher import Flusher
from .outcomes import OutcomeRecorder, log_outcome
from .rate_limit import RateLimiter
from .runtime_control import RuntimeControl

if TYPE_CHECKING:
    from ..app import Celery
    from ..task import Task
    from .slots import Slots

logger = logging.getLogger("celeriac.worker")

#: How long past its hard limit an ``async def`` task's slot may stay in use before the supervisor
#: kills the process: the limit itself is a cancellation; the kill is for a coroutine that never
#: yields (or a plain task in an asyncio pool's thread executor), which no cancellation can stop.
HARD_GRACE = 1.0


def _soft_limit(signum: int, frame: Any) -> None:
    raise SoftTimeLimitExceeded("soft time limit exceeded")


def rss_kib() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


class Consumer(RuntimeControl, RateLimiter, OutcomeRecorder):
    """Runs in a pool process (prefork) or a thread (threads/solo pools). The per-task path is
    here; what remote control changes (``runtime_control``), the global rate limit
    (``rate_limit``) and what is recorded for messages that do not run or end badly
    (``outcomes``) are in the parts mixed in."""

    #: How long a reconcile waits for the flusher to write what it was handed before it looks at
    #: the broker's leases (if it waits in vain, the next fetch tries again).
    reconcile_wait = 5.0

    def __init__(self, app: Celery, *, hostname: str, index: int, queues: list[str], prefetch: int,
                 incarnation: str | None = None,
                 slots: Slots | None = None, max_tasks: int | None = None,
                 max_memory_kib: int | None = None, in_thread: bool = False) -> None:
        self.app = app
        self.hostname = hostname
        self.index = index
        self.queues = queues
        self.prefetch = max(1, prefetch)
        self.slots = slots
        self.max_tasks = max_tasks
        self.max_memory_kib = max_memory_kib
        self.in_thread = in_thread
        self.stopping = False
        self.reserved: deque[Delivery] = deque()
        self.processed = 0
        self.pid = os.getpid()
        # Leases are held by the worker's incarnation (see worker/identity.py).
        self.consumer_name = f"{incarnation or hostname}/{self.pid}-{index}"
        self.epoch = 0  # the lease epoch (Slots.lease_epoch) when the reserved batch was fetched
        self.reconciled = slots.broker_generation() if slots is not None else 0  # see _reconcile
        self.consumed = set(queues)  # every queue fetched from: a cancelled one may still hold leases
        conf = app.conf
        self.accept = frozenset(conf.accept_content)
        self.max_bytes = int(conf.task_message_max_bytes)
        self.signing_key = app.signing_key
        self.signing_max_age = conf.task_message_signing_max_age
        self.extended = bool(conf.result_extended)
        self.disable_rate_limits = bool(conf.worker_disable_rate_limits)
        self.redactor = app.redactor
        self.redacting = bool(self.redactor)  # a plain attribute: read once per task
        self._init_control(conf)
        self._turn = -1  # which queue a fetch looks at first (see _fair_queues)

    def _shown(self, task: Task[Any, Any], envelope: message.Envelope) -> tuple[str, str]:
        """The arguments as events and ``inspect active`` show them, secrets hidden."""
        args: Sequence[Any] = envelope.args
        kwargs = envelope.kwargs
        if self.redacting:
            args, kwargs = self.redactor.arguments(args, kwargs, task)
        return (safe_repr(args, 1000) if args else "()", safe_repr(kwargs, 1000) if kwargs else "{}")

    def _event(self, kind: str, envelope: message.Envelope, **fields: Any) -> None:
        if self.events:
            self.flusher.event(TaskEvent(kind, envelope.id, envelope.task, self.hostname, time.time(), self.pid,
                                         **fields))

    # -- lifecycle --------------------------------------------------------------------------
    def stop(self) -> None:
        """Warm stop: finish the running task; prefetched ones go back to the queue at once."""
        self.stopping = True
        # A threads-pool consumer may be stopped before its thread reached run(): nothing is
        # reserved yet, and run() sees ``stopping`` before its first fetch.
        flusher = getattr(self, "flusher", None)
        if flusher is not None:
            flusher.give_back(self.reserved)

    def _on_term(self, signum: int, frame: Any) -> None:
        if self.slots is not None and self.slots.terminating(self.index):
            # revoke(terminate=True): die of this signal, as a process without a handler would
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if signum == signal.SIGTERM:
            self.stop()

    def run(self) -> int:
        """The fetch-run loop. Returns the exit code (0: clean stop or recycled)."""
        self.broker = self.app.broker
        self.backend = self.app.backend
        self.clock = BrokerClock(self.broker)
        self.flusher = Flusher(self.app, self.consumer_name, self.queues, slots=self.slots)
        if not self.in_thread:
            signal.signal(signal.SIGTERM, self._on_term)
            # Ctrl-C is the supervisor's to handle; SIGINT only matters for revoke(terminate=True)
            signal.signal(signal.SIGINT, self._on_term)
            signal.signal(signal.SIGALRM, _soft_limit)
            # The supervisor forked us with stop signals blocked; one sent meanwhile lands now.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
            signals.worker_process_init.send(sender=None)
        try:
            while not self.stopping:
                try:
                    self._sync_control()
                    if self.slots is not None:
                        self.epoch = self.slots.lease_epoch()
                        self.flusher.fetched_under(self.epoch)
                        if self.slots.broker_generation() != self.reconciled:
                            self._reconcile()
                    batch = self.broker.fetch(self._fair_queues(), self.consumer_name, self.prefetch, timeout=1.0)
                except BrokerError as exc:
                    self._broker_lost(exc)
                    continue
                if not batch:
                    continue
                self.reserved.extend(batch)
                if self.stopping:  # a stop that came while we were fetching
                    self.flusher.give_back(self.reserved)
                while not self.stopping:
                    try:
                        delivery = self.reserved.popleft()
                    except IndexError:
                        break
                    try:
                        self.handle(delivery)
                    except BrokerError as exc:  # before the task started: it goes back to the queue
                        self._broker_lost(exc)
                        break
                    except Exception as exc:  # a bug before the task started: never a crash loop
                        logger.exception("internal error handling message %s", delivery.tag)
                        self._refuse(delivery, message.peek_id(delivery.body), None, exc, internal=True)
                    if self._should_recycle():
                        self.stop()
        finally:
            self.flusher.give_back(self.reserved)
            self.flusher.close()
            if not self.in_thread:
                signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
        return 0

    def _fair_queues(self) -> list[str]:
        """The queues in the order to fetch from this time: a broker fetch drains its queues in
        the order given, so the first queue turns each fetch (as kombu's round robin does) and
        ``-Q a,b`` serves both instead of leaving b until a is empty."""
        queues = self.queues
        if len(queues) < 2:
            return queues
        self._turn = (self._turn + 1) % len(queues)
        return queues[self._turn:] + queues[:self._turn]

    def _broker_lost(self, exc: BrokerError) -> None:
        """The broker went away during a fetch, or before a task started. A fetch whose reply was
        lost may have leased messages this process never saw, and this worker's heartbeat would
        keep them leased: once the broker answers again and every finished task is acked, give
        back everything still leased to this process (the prefetched ones too) and go on."""
        logger.warning("broker unavailable (%s): pool process %d waits for it", exc, os.getpid())
        self.reserved.clear()
        pause = 0.1
        while not self.stopping:
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
            if not self.flusher.wait_idle(pause):
                continue
            try:
                self.broker.release(self.consumer_name, self.queues)
            except BrokerError:
                continue
            logger.warning("broker reachable again: pool process %d goes on", os.getpid())
            return

    def _in_hand(self) -> list[Delivery]:
        """What this process holds at a fetch: nothing runs then, and the batch is used up."""
        return list(self.reserved)

    def _reconcile(self) -> None:
        """The supervisor saw the broker come back as another store (Slots.broker_generation), so
        acks it confirmed may be gone: once the flusher has written everything handed to it,
        give back what the broker still leases to this process but it does not hold
        (worker/reconcile.py). Runs in the thread that fetches, so no fetch races it."""
        assert self.slots is not None
        generation = self.slots.broker_generation()
        if not self.flusher.wait_idle(self.reconcile_wait):
            return  # the next fetch tries again
        reconcile.give_back(self.broker, self.consumer_name, sorted(self.consumed), self._in_hand())
        self.reconciled = generation

    def _should_recycle(self) -> bool:
        self.processed += 1
        if self.max_tasks and self.processed >= self.max_tasks:
            logger.info("process %d recycled after %d tasks (max_tasks_per_child)", os.getpid(), self.processed)
            return True
        if self.max_memory_kib and not self.in_thread:
            rss = rss_kib()
            if rss > self.max_memory_kib:
                logger.warning("process %d uses %d KiB > max_memory_per_child %d KiB: recycling",
                               os.getpid(), rss, self.max_memory_kib)
                return True
        return False

    # -- one message ------------------------------------------------------------------------
    def _still_ours(self, delivery: Delivery) -> bool:
        """Before a prefetched task starts: is its message surely still leased to us? Asked of the
        broker only when the lease word says we cannot be sure (see worker/slots.py)."""
        if self.slots is None or not self.slots.lease_doubtful(self.epoch):
            return True
        if self.broker.holding(self.consumer_name, [delivery]):
            return True
        logger.warning("Not starting message %s: this worker's lease lapsed (it was paused or cut off) and "
                       "the message went to another worker", message.peek_id(delivery.body) or delivery.tag)
        return False

    def handle(self, delivery: Delivery) -> None:
        if not self._still_ours(delivery):
            return
        if len(delivery.body) > self.max_bytes:
            self._refuse(delivery, None, None, DecodeError(
                f"message of {len(delivery.body)} bytes is larger than task_message_max_bytes ({self.max_bytes})"))
            return
        try:
            envelope = message.decode(delivery.body, accept=self.accept, signing_key=self.signing_key,
                                      max_age=self.signing_max_age)
        except DecodeError as exc:
            if signals.task_rejected.receivers:
                signals.task_rejected.send(sender=self, message=delivery, exc=exc)
            # A message whose signature fails names a task id nobody vouches for: recording a
            # FAILURE under it would let anyone who can write to the broker overwrite any result.
            forged = isinstance(exc, SignatureError) and not exc.authentic
            self._refuse(delivery, None if forged else message.peek_id(delivery.body), None, exc)
            return
        except Exception as exc:  # RecursionError (deep nesting), UnicodeDecodeError, ...: still bad input
            if signals.task_rejected.receivers:
                signals.task_rejected.send(sender=self, message=delivery, exc=exc)
            self._refuse(delivery, message.peek_id(delivery.body), None,
                         DecodeError(f"undecodable message: {type(exc).__name__}: {exc}"))
            return
        try:
            task = self.app.get_task(envelope.task)
        except NotRegistered as exc:
            logger.error("Received unregistered task of type %r. The message has been dead-lettered. "
                         "(task id %s)", envelope.task, envelope.id)
            if signals.task_unknown.receivers:
                signals.task_unknown.send(sender=self, name=envelope.task, id=envelope.id, message=delivery,
                                          exc=exc)
            self._refuse(delivery, envelope.id, envelope.task, exc, envelope=envelope)
            return
        if signals.task_received.receivers:
            signals.task_received.send(sender=self, request=self._request(envelope, delivery))
        self._sync_control()
        # Shown in the task-received event and the slot that `inspect active` reads: built once.
        shown = self._shown(task, envelope)
        if self.events:  # not through _event: no keyword dict and no frame more, once per task
            self.flusher.event(TaskEvent(
                "task-received", envelope.id, envelope.task, self.hostname, time.time(), self.pid,
                args=shown[0], kwargs=shown[1], retries=envelope.retries, eta=envelope.eta,
                expires=envelope.expires, queue=delivery.queue, priority=delivery.priority,
                sent=envelope.sent, client=envelope.origin, root_id=envelope.root_id,
                parent_id=envelope.parent_id,
                call=call_json(envelope.args, envelope.kwargs, self.redacting and self.redactor, task)))
        if envelope.expires is not None and self.clock.now() > envelope.expires:
            logger.info("Discarding expired task %s[%s]", envelope.task, envelope.id)
            self._finish_without_running(task, delivery, envelope, states.REVOKED, "expired")
            return
        if envelope.id in self.revoked:
            logger.info("Discarding revoked task %s[%s]", envelope.task, envelope.id)
            self._finish_without_running(task, delivery, envelope, states.REVOKED, "revoked")
            return
        if self.revoked_stamps and self._revoked_by_stamp(envelope):
            self._finish_without_running(task, delivery, envelope, states.REVOKED, "revoked")
            return
        if self._rate_limited(task, delivery, envelope):
            return
        self._run(task, delivery, envelope, shown)

    def _request(self, envelope: message.Envelope, delivery: Delivery) -> Any:
        return request_for(envelope, hostname=self.hostname, delivery_info={
            "queue": delivery.queue, "priority": delivery.priority, "routing_key": delivery.queue,
            "exchange": "", "redelivered": delivery.redeliveries > 0})

    def _run(self, task: Task[Any, Any], delivery: Delivery, envelope: message.Envelope,
             shown: tuple[str, str]) -> None:
        # An async def task's limits are cancellations inside its own event loop (celeriac.aio);
        # the supervisor's kill, a grace later, is for a coroutine that never yields.
        is_async = task.is_async
        context, acks_late, hard, soft = self._start(task, delivery, envelope, shown, self.index,
                                                     HARD_GRACE if is_async else 0.0)
        alarm = soft if not self.in_thread and not is_async else None
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, alarm)
        try:
            outcome = execute(task, context, soft, hard) if is_async else execute(task, context)
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
        if self.slots is not None:
            self.slots.end(self.index, failed=outcome.state == states.FAILURE)
        self._conclude(task, delivery, context, outcome, acks_late)

    def _start(self, task: Task[Any, Any], delivery: Delivery, envelope: message.Envelope,
               shown: tuple[str, str], slot: int, grace: float = 0.0,
               writes: bool = True) -> tuple[Any, bool, float | None, float | None]:
        """Everything up to the call: STARTED, the early ack, the slot (its hard limit plus
        ``grace`` is when the supervisor kills), the event. Returns (request, acks_late, hard, soft).
        ``writes=False``: only the slot; the caller does the rest (-P asyncio, off its loop)."""
        name, task_id = envelope.task, envelope.id
        acks_late = task.option("acks_late", "task_acks_late")
        # STARTED is stored before the slot is taken: if that fails, the task has not started
        # and goes back to the queue (see _broker_lost).
        if writes and task.option("track_started", "task_track_started") and not envelope.ignore_result:
            self.backend.store(task_id, states.STARTED, {"pid": os.getpid(), "hostname": self.hostname},
                               name=name, worker=self.hostname, retries=envelope.retries)
        context = self._request(envelope, delivery)
        limits = self.time_limits_for(task)
        hard = envelope.time_limit or limits[0]
        soft = envelope.soft_time_limit or limits[1]
        if self.slots is not None:
            info = {
                "id": task_id, "name": name, "tag": delivery.tag, "q": delivery.queue,
                "p": delivery.priority, "d": delivery.redeliveries, "al": bool(acks_late),
                "rl": bool(task.option("reject_on_worker_lost", "task_reject_on_worker_lost")),
                "started": time.time(), "hard": hard or 0, "args": shown[0],
                "kwargs": shown[1]}
            if envelope.flow is not None and envelope.flow.chord is not None:
                # So the supervisor counts a header task it kills or loses into its chord.
                chord = envelope.flow.chord
                info["ch"] = [chord.id, chord.queue, chord.priority]
            self.slots.begin(slot, info, hard + grace if hard else None)
        if writes:
            if not acks_late:
                self._ack_early(delivery, slot)
            if self.events:
                self.flusher.event(TaskEvent("task-started", task_id, name, self.hostname, time.time(), self.pid))
            if logger.isEnabledFor(logging.INFO):
                logger.info("Task %s[%s] received", name, task_id)
        return context, bool(acks_late), hard, soft

    def _ack_early(self, delivery: Delivery, slot: int) -> None:
        """acks_late=False: at-most-once, as the task asked. The slot is written first, so the
        task is in ``inspect active`` (and the supervisor's view) the moment its message stops
        being leased, never in neither; a process that dies now has its task recorded as lost
        (WorkerLostError), as after the ack. A failed ack clears the slot again: the task has
        not started and goes back to the queue (see _broker_lost)."""
        try:
            self.broker.ack([delivery])
        except BrokerError:
            if self.slots is not None:
                self.slots.clear(slot)
            raise

    def _conclude(self, task: Task[Any, Any], delivery: Delivery, context: Any, outcome: Outcome,
                  acks_late: bool) -> None:
        name, task_id = context.task, context.id
        records: list[tuple[str, bytes, bool]] = []
        ignore = context.ignore_result or task.option("ignore_result", "task_ignore_result")
        if outcome.state != IGNORED and (not ignore or (outcome.state == states.FAILURE and task.option(
                "store_errors_even_if_ignored", "task_store_errors_even_if_ignored"))):
            state, data = outcome_meta(context, outcome, extended=self.extended, redactor=self.redactor, task=task)
            records.append((task_id, data, state in states.READY_STATES))
        state = outcome.state
        log_outcome(task, name, task_id, outcome)
        if self.events and state == states.SUCCESS:  # the common event, without _outcome_event's frames
            envelope = context.envelope
            self.flusher.event(TaskEvent("task-succeeded", envelope.id, envelope.task, self.hostname, time.time(),
                                         self.pid, runtime=outcome.runtime, result=safe_repr(outcome.result)))
        elif self.events:
            self._outcome_event(context.envelope, outcome)
        send_postrun(task, context, outcome)
        if context.envelope.flow is not None:  # canvas: links, the chain's next step, a chord's count
            records = followups.conclude(self.app, task, context, outcome, records)
        leased = delivery if acks_late else None  # acks_late=False acked before running
        if state == states.RETRY and outcome.retry is not None and self._revoked_meanwhile(task_id, context.envelope):
            # Its next attempt could be due after the revocation is forgotten: it never comes.
            logger.info("Task %s[%s] revoked while it ran: not retried", name, task_id)
            self._finish_without_running(task, delivery, context.envelope, states.REVOKED, "revoked",
                                         ack=leased is not None)
        elif state == states.RETRY and outcome.retry is not None:
            retry = outcome.retry
            serializer = task.serializer or self.app.conf.task_serializer
            body = message.encode(retry, serializer=serializer, signing_key=self.signing_key)
            self.flusher.send_retry(leased, retry.queue, body, retry.priority, outcome.retry_in, retry.id,
                                    records)
        elif leased is None:
            self.flusher.store(records)
        elif state == states.REJECTED:
            if outcome.requeue:
                self.flusher.requeue(delivery, records)
            else:
                self.flusher.dead_letter(delivery, f"rejected by the task: {outcome.exc}", records)
        elif state == states.FAILURE and not task.option("acks_on_failure_or_timeout",
                                                         "task_acks_on_failure_or_timeout"):
            self._dead_letter_failed(delivery, context, outcome, records)
        else:
            self.flusher.finish(delivery, records)
