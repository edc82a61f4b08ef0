"""An asyncio pool process: one consumer, one event loop, up to ``width`` tasks at once.

It is the prefork consumer (worker/consumer.py) with two things changed: a message is started
as an asyncio task in a free slot instead of being run to completion, and the blocking broker
fetch runs on a helper thread so the loop goes on while it waits. Everything else (decoding,
revocations, rate limits, the flusher that acks and stores results in batches, the slots the
supervisor reads) is the same code, so a kill -9 of this process is recovered exactly as a
prefork one: every slot in use is a started task (charged), the rest of what the process holds
was prefetched (returned uncharged).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .. import message, signals, states
from ..aio import execute_async
from ..brokers.base import Delivery
from ..brokers.clock import BrokerClock
from ..exceptions import BrokerError
from . import reconcile
from .consumer import HARD_GRACE, Consumer
from .flusher import Flusher

if TYPE_CHECKING:
    from ..app import Celery
    from ..task import Context, Task

logger = logging.getLogger("celeriac.worker")

TERMINATE_POLL = 0.1  # seconds between looks at the slots' terminate flags


class AsyncConsumer(Consumer):
    def __init__(self, app: Celery, *, width: int, **options: Any) -> None:
        super().__init__(app, **options)
        self.width = max(1, width)
        first = self.index * self.width
        self.free = list(range(first + self.width - 1, first - 1, -1))  # pop() takes the lowest
        self.running: dict[int, asyncio.Task[None]] = {}
        self.holding: dict[int, Delivery] = {}  # slot -> the message its task (or wait) holds
        self.room: asyncio.Event | None = None
        self.terminating: set[int] = set()  # slots whose task is being cancelled for a revoke
        self.start_delay = 0.0  # set by _wait_for_slot, taken by the _run that follows
        # A broker error a task's coroutine met: the main loop waits for the broker (only it may,
        # as only it fetches: see _give_back_beside_tasks).
        self.broker_lost: BrokerError | None = None

    def stop(self) -> None:
        super().stop()
        if self.room is not None:
            self.room.set()

    def run(self) -> int:
        self.broker = self.app.broker
        self.backend = self.app.backend
        self.clock = BrokerClock(self.broker)
        self.flusher = Flusher(self.app, self.consumer_name, self.queues, slots=self.slots)
        signals.worker_process_init.send(sender=None)
        try:
            asyncio.run(self._main())
        finally:
            self.flusher.give_back(self.reserved)
            self.flusher.close()
            signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
        return 0

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self.room = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, lambda: None)  # Ctrl-C is the supervisor's to handle
        # The supervisor forked us with stop signals blocked; one sent meanwhile lands now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
        # Plain (sync) tasks run here, at most one per slot.
        loop.set_default_executor(ThreadPoolExecutor(self.width, thread_name_prefix="celeriac-sync"))
        fetcher = self.fetcher = ThreadPoolExecutor(1, thread_name_prefix="celeriac-fetch")
        watcher = loop.create_task(self._watch_terminations())
        try:
            while not self.stopping:
                if self.broker_lost is not None:
                    exc, self.broker_lost = self.broker_lost, None
                    await self._wait_for_broker(loop, fetcher, exc)
                    continue
                if not self.reserved and not await self._fetch(loop, fetcher):
                    continue
                await self._start_reserved(loop, fetcher)
                if self.reserved and not self.free and not self.stopping:
                    await self._wait_room()
            if self.running:  # a warm stop: running tasks finish, prefetched ones went back
                await asyncio.wait(list(self.running.values()))
        finally:
            watcher.cancel()
            fetcher.shutdown(wait=False)

    async def _watch_terminations(self) -> None:
        """revoke(terminate=True): the supervisor flags the slot; the task is cancelled here,
        so the process's other tasks go on."""
        if self.slots is None:
            return
        while True:
            await asyncio.sleep(TERMINATE_POLL)
            for slot, running in list(self.running.items()):
                if slot not in self.terminating and self.slots.terminating(slot):
                    self.terminating.add(slot)
                    running.cancel()

    async def _fetch(self, loop: asyncio.AbstractEventLoop, fetcher: ThreadPoolExecutor) -> bool:
        self._sync_control()
        if self.slots is not None:
            epoch = self.slots.lease_epoch()
            if epoch != self.epoch and self.running:
                # The lease lapsed since the running tasks were fetched: the flusher fences by
                # the epoch of what is pushed last, so let them finish under theirs first.
                await self._wait_room()
                return False
            self.epoch = epoch
            self.flusher.fetched_under(epoch)
            generation = self.slots.broker_generation()
            if generation != self.reconciled:
                try:
                    if await self._give_back_beside_tasks(loop, fetcher):
                        self.reconciled = generation
                except BrokerError as exc:
                    await self._wait_for_broker(loop, fetcher, exc)
                    return False
        want = len(self.free) + self.prefetch
        try:
            batch = await loop.run_in_executor(fetcher, self.broker.fetch, self._fair_queues(),
                                               self.consumer_name, want, 1.0)
        except BrokerError as exc:
            await self._wait_for_broker(loop, fetcher, exc)
            return False
        if not batch:
            return False
        self.reserved.extend(batch)
        if self.stopping:  # a stop that came while we were fetching
            self.flusher.give_back(self.reserved)
        return True

    def _in_hand(self) -> list[Delivery]:
        return [*self.reserved, *self.holding.values()]

    async def _give_back_beside_tasks(self, loop: asyncio.AbstractEventLoop, fetcher: ThreadPoolExecutor,
                                      why: str = reconcile.LOST_ACKS) -> bool:
        """Give back what the broker leases to this process but it does not hold, while its
        tasks run on (worker/reconcile.py). What it holds is read on the loop's thread, together
        with a flusher barrier behind everything already handed over, so a message is either
        held (kept) or its ack is written before the broker is asked; the broker is asked on
        the fetching thread, so the loop never waits on it, and only the main loop calls this
        between fetches, so no fetch races it. False: the flusher has not caught up yet."""
        keep, written = self._in_hand(), self.flusher.barrier()
        queues = sorted(self.consumed)

        def give_back() -> bool:
            if not written.wait(self.reconcile_wait):
                return False
            reconcile.give_back(self.broker, self.consumer_name, queues, keep, why=why)
            return True

        return await loop.run_in_executor(fetcher, give_back)

    async def _start_reserved(self, loop: asyncio.AbstractEventLoop, fetcher: ThreadPoolExecutor) -> None:
        while self.free and not self.stopping:
            try:
                delivery = self.reserved.popleft()
            except IndexError:
                return
            try:
                self.handle(delivery)
            except BrokerError as exc:  # before the task started: it goes back to the queue
                await self._wait_for_broker(loop, fetcher, exc)
                return
            except Exception as exc:  # a bug before the task started: never a crash loop
                logger.exception("internal error handling message %s", delivery.tag)
                self._refuse(delivery, message.peek_id(delivery.body), None, exc, internal=True)
            if self._should_recycle():
                self.stop()

    async def _wait_for_broker(self, loop: asyncio.AbstractEventLoop, fetcher: ThreadPoolExecutor,
                               exc: BrokerError) -> None:
        """Consumer._broker_lost while the running tasks go on: once the broker answers and the
        flusher has written what it was handed, give back everything leased to this process
        but what its tasks run (a lost fetch reply's messages, the prefetched ones, lost acks);
        a running task is never handed to another worker, nor waited for."""
        logger.warning("broker unavailable (%s): pool process %d waits for it", exc, os.getpid())
        self.reserved.clear()  # never started: they go back with the rest
        pause = 0.1
        while not self.stopping:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
            try:
                if not await self._give_back_beside_tasks(loop, fetcher, why=reconcile.BROKER_LOST):
                    continue
            except BrokerError:
                continue
            logger.warning("broker reachable again: pool process %d goes on", os.getpid())
            return

    async def _wait_room(self) -> None:
        assert self.room is not None
        self.room.clear()
        try:
            await asyncio.wait_for(self.room.wait(), 1.0)
        except TimeoutError:
            pass

    def _wait_for_slot(self, seconds: float) -> None:
        self.start_delay = seconds

    def _run(self, task: Task[Any, Any], delivery: Delivery, envelope: message.Envelope,
             shown: tuple[str, str]) -> None:
        slot = self.free.pop()
        delay, self.start_delay = self.start_delay, 0.0
        # Its rate-limit slot is near (hold the slot, start then, not yet charged), or it writes
        # to the broker before it runs: either wait is its own coroutine's, never the loop's.
        if delay > 0 or self._writes_at_start(task, envelope):
            self.running[slot] = asyncio.get_running_loop().create_task(
                self._start_later(delay, task, delivery, envelope, shown, slot))
            self.holding[slot] = delivery
            return
        try:
            context, acks_late, hard, soft = self._start(task, delivery, envelope, shown, slot, HARD_GRACE)
        except BaseException:
            self.free.append(slot)
            raise
        self.running[slot] = asyncio.get_running_loop().create_task(
            self._execute(task, delivery, context, acks_late, slot, soft, hard))
        self.holding[slot] = delivery

    async def _start_later(self, delay: float, task: Task[Any, Any], delivery: Delivery,
                           envelope: message.Envelope, shown: tuple[str, str], slot: int) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            context, acks_late, hard, soft = await self._start_off_loop(task, delivery, envelope, shown, slot)
        except BaseException as exc:
            del self.running[slot]
            del self.holding[slot]
            self.free.append(slot)
            if self.room is not None:
                self.room.set()
            if isinstance(exc, asyncio.CancelledError) and slot in self.terminating:
                # revoke(terminate=True) while its early ack was being written: it never ran. The
                # ack goes on in its thread, so only the record is written here (a fenced finish
                # would drop it once the message is acked); should the ack fail, the message,
                # held by nobody here, is given back and then discarded as revoked.
                self.terminating.discard(slot)
                if self.slots is not None:
                    self.slots.clear(slot)
                    self.slots.flag_terminate(slot, False)
                self._finish_without_running(task, delivery, envelope, states.REVOKED, "terminated", ack=False)
            elif isinstance(exc, BrokerError):  # not started: it goes back to the queue
                self.broker_lost = exc
            elif isinstance(exc, Exception):
                logger.exception("internal error handling message %s", delivery.tag)
                self._refuse(delivery, envelope.id, envelope.task, exc, internal=True)
            else:
                raise
            return
        await self._execute(task, delivery, context, acks_late, slot, soft, hard)

    @staticmethod
    def _writes_at_start(task: Task[Any, Any], envelope: message.Envelope) -> bool:
        return not task.option("acks_late", "task_acks_late") or bool(
            task.option("track_started", "task_track_started") and not envelope.ignore_result)

    async def _start_off_loop(self, task: Task[Any, Any], delivery: Delivery, envelope: message.Envelope,
                              shown: tuple[str, str], slot: int) -> tuple[Any, bool, float | None, float | None]:
        """Consumer._start with its broker writes in the sync-task executor, in the same order
        (STARTED, the slot, the early ack, then the event) and with the same meaning (a failed
        write: not started). That executor has a thread per slot and this slot's task does not
        run yet, so a thread is free; the loop and the other tasks go on meanwhile."""
        loop = asyncio.get_running_loop()
        if task.option("track_started", "task_track_started") and not envelope.ignore_result:
            await loop.run_in_executor(None, functools.partial(
                self.backend.store, envelope.id, states.STARTED, {"pid": os.getpid(), "hostname": self.hostname},
                name=envelope.task, worker=self.hostname, retries=envelope.retries))
        context, acks_late, hard, soft = self._start(task, delivery, envelope, shown, slot, HARD_GRACE,
                                                     writes=False)
        if not acks_late:
            await loop.run_in_executor(None, self._ack_early, delivery, slot)
        self._event("task-started", envelope)
        if logger.isEnabledFor(logging.INFO):
            logger.info("Task %s[%s] received", envelope.task, envelope.id)
        return context, acks_late, hard, soft

    async def _execute(self, task: Task[Any, Any], delivery: Delivery, context: Context, acks_late: bool,
                       slot: int, soft: float | None, hard: float | None) -> None:
        try:
            outcome = await execute_async(task, context, soft, hard)
            if self.slots is not None:
                self.slots.end(slot, failed=outcome.state == states.FAILURE)
            self._conclude(task, delivery, context, outcome, acks_late)
        except asyncio.CancelledError:
            if slot not in self.terminating:
                raise
            logger.warning("Task %s[%s] terminated (revoked)", context.task, context.id)
            if self.slots is not None:
                self.slots.end(slot)
            assert context.envelope is not None
            self._finish_without_running(task, delivery, context.envelope, states.REVOKED, "terminated",
                                         ack=acks_late)
        except Exception as exc:
            logger.exception("internal error finishing task %s", context.id)
            if self.slots is not None:
                self.slots.clear(slot)
            self._refuse(delivery, context.id, context.task, exc, internal=True)
        finally:
            if slot in self.terminating:
                self.terminating.discard(slot)
                if self.slots is not None:
                    self.slots.flag_terminate(slot, False)
            del self.running[slot]
            del self.holding[slot]
            self.free.append(slot)
            if self.room is not None:
                self.room.set()
