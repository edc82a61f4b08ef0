"""The worker's main process: starts the pool, keeps the worker's lease alive, and watches.

It never runs tasks and never touches a task message on the happy path. It
- heartbeats, which extends the lease of every message its pool holds;
- recovers messages of other workers whose lease lapsed, and promotes due delayed messages;
- enforces hard time limits (kills the process, records TimeLimitExceeded, replaces it);
- reaps pool processes that died (records WorkerLostError or redelivers, as the task asks);
- shuts down warm (running tasks finish, prefetched ones go back) or cold (everything goes
  back to the queue; at-least-once still holds).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from .. import signals
from ..brokers.base import Delivery
from ..events import EventCap
from ..exceptions import BrokerError
from .identity import identity, new_incarnation
from .leasing import LeaseKeeper
from .pools import POOLS, Pool
from .remote import Remote
from .slots import Running, Slots

if TYPE_CHECKING:
    from ..app import Celery

logger = logging.getLogger("celeriac.worker")


class Supervisor(LeaseKeeper):
    """The pool's lifecycle and the main loop; the lease upkeep (``leasing.py``) and what it records
    for tasks it saw end without finishing (``losses.py``) are its mixed-in parts."""

    def __init__(self, app: Celery, *, hostname: str, queues: list[str], concurrency: int,
                 pool: str = "prefork", prefetch_multiplier: int = 4, max_tasks_per_child: int | None = None,
                 max_memory_per_child: int | None = None, shutdown_timeout: float = 60.0,
                 max_concurrency: int = 0, width: int = 1) -> None:
        self.app = app
        self.hostname = hostname
        # Leases are held by this incarnation, not by the name: a restart under the same name
        # must not keep its dead predecessor's leases alive (see worker/identity.py).
        self.incarnation = new_incarnation(hostname)
        self.queues = queues
        # Every queue consumed since start: a cancelled queue may still hold this worker's
        # leases, and recovery and release must keep looking there.
        self.consumed: set[str] = set(queues)
        self.concurrency = concurrency
        # What runs the tasks (worker/pools): ``width`` tasks at once per member.
        self.pool: Pool = POOLS[pool](self, width)
        self.prefetch = max(1, prefetch_multiplier) if prefetch_multiplier else 1
        self.max_tasks_per_child = max_tasks_per_child
        self.max_memory_per_child = max_memory_per_child
        self.shutdown_timeout = shutdown_timeout
        self.broker = app.broker
        self.backend = app.backend
        # Room for pool_grow: pool processes share this mapping from birth, so it cannot move.
        self.slots = Slots(max(concurrency * 4, 16, max_concurrency) * self.pool.width)
        self.autoscaler: Any = None  # worker/autoscale.py, ticked once a second
        self.consumers: dict[int, str] = {}         # member index -> consumer name
        self.timed_out: dict[int, Running] = {}     # slot index -> the task killed for its hard limit
        self.unreleased: set[str] = set()  # consumers of dead pool processes whose leases are still held
        self.terminated: dict[int, str] = {}        # slot index -> task id revoked with terminate
        self.events = bool(app.conf.worker_send_task_events)
        self.event_cap = EventCap.from_conf(app.conf)
        self.stop_mode: str | None = None            # None, "warm" or "cold"
        self.stop_signal: str | None = None
        self.stop_deadline = 0.0
        self.started_at = time.time()
        self._wake_r, self._wake_w = os.pipe()
        self._stop_event = threading.Event()
        interval = float(app.conf.worker_heartbeat_interval)
        self.lease = float(app.conf.broker_lease_seconds)
        self.heartbeat_every = min(interval, self.lease / 3)
        self.first_beat = True
        self.beat_ok_at = float("-inf")  # monotonic time of the last heartbeat the broker took
        self.beat_failed = False
        self.lineage: str | None = None  # the broker's (Broker.lineage), looked at once a lease
        self.next_lineage = float("-inf")
        self.gone_unreconciled = False  # the broker changed; leases of ended pool processes to check
        self.identity = identity()

    # -- lifecycle ----------------------------------------------------------------------------
    def run(self, install_signals: bool = True) -> int:
        """Run until shut down. Without signals (an in-process test worker), call stop()."""
        if install_signals:
            self._install_signals()
        self.remote = Remote(self)
        self.remote.publish()
        self._evict_predecessors()
        self._heartbeat()
        self._worker_event("worker-online")
        for index in range(self.concurrency):
            self._start_member(index)
        promoter = threading.Thread(target=self._promote_loop, name="promoter", daemon=True)
        promoter.start()
        self.remote.start()
        logger.info("%s ready.", self.hostname)
        signals.worker_ready.send(sender=self)
        try:
            self._loop()
        finally:
            self._stop_event.set()
            # Both threads may sit in a blocking read of up to a second: a shutdown must not
            # overrun worker_shutdown_timeout waiting for them (their broker steps are atomic,
            # and the exit ends them).
            self.remote.stop(wait=0.05)
            promoter.join(0.05)
            self._final_release()
            self._worker_event("worker-offline")
            try:
                self.broker.deregister(self.incarnation)
            except BrokerError as exc:
                logger.warning("could not deregister: %s", exc)
            signals.worker_shutdown.send(sender=self)
            os.close(self._wake_r)
            os.close(self._wake_w)
        return 0

    def _install_signals(self) -> None:
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGQUIT, self._on_cold_signal)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wake-up fd is what matters

    def stop(self, cold: bool = False) -> None:
        """Shut down from another thread: warm, or cold when asked (or on the second call)."""
        self._on_cold_signal(0, None) if cold else self._on_stop_signal(0, None)
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        self.stop_signal = signal.Signals(signum).name if signum else None
        if self.stop_mode is None:
            self.stop_mode = "warm"
        else:
            self.stop_mode = "cold"

    def _on_cold_signal(self, signum: int, frame: Any) -> None:
        self.stop_signal = signal.Signals(signum).name if signum else None
        self.stop_mode = "cold"

    # -- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        import select

        next_beat = time.monotonic() + self.heartbeat_every
        next_recover = time.monotonic()
        warm_started = False
        while True:
            now = time.monotonic()
            if self.stop_mode == "warm" and not warm_started:
                warm_started = True
                self._shutting_down("Warm")
                self.stop_deadline = now + self.shutdown_timeout
                logger.warning("Warm shutdown: waiting up to %gs for running tasks", self.shutdown_timeout)
                self._signal_pool(signal.SIGTERM)
            if self.stop_mode == "warm" and now > self.stop_deadline:
                logger.warning("Warm shutdown timed out: cold shutdown, unfinished tasks go back to the queue")
                self.stop_mode = "cold"
            if self.stop_mode == "cold":
                self._shutting_down("Cold")
                logger.warning("Cold shutdown: stopping the pool now")
                self._signal_pool(signal.SIGKILL)
                self._reap(block=True)
                return
            self._reap(block=False)
            if self.stop_mode == "warm" and not self.pool.alive():
                return
            if now >= next_beat:
                self._heartbeat()
                next_beat = now + self.heartbeat_every
            if now >= next_recover:
                if self.stop_mode is None:
                    self._recover()
                    if self.autoscaler is not None:
                        self.autoscaler.tick(now)
                next_recover = now + 1.0  # moved on while stopping too, or select() would spin
            deadline = self._enforce_hard_limits(now)
            if self.stop_mode == "warm":
                deadline = min(deadline, self.stop_deadline + 0.001)
            timeout = max(0.0, min(next_beat, next_recover, deadline, now + 0.25) - time.monotonic())
            try:
                ready, _, _ = select.select([self._wake_r], [], [], timeout)
            except InterruptedError:
                ready = []
            if ready:
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass

    def _shutting_down(self, how: str) -> None:
        if signals.worker_shutting_down.receivers:
            signals.worker_shutting_down.send(sender=self.hostname, sig=self.stop_signal, how=how, exitcode=0)

    def _signal_pool(self, signum: int) -> None:
        self.pool.signal(signum)

    # -- pool processes -----------------------------------------------------------------------
    def _start_member(self, index: int) -> None:
        self.consumers[index] = self.pool.start(index)

    def _reap(self, block: bool) -> None:
        for index, pid, status in self.pool.reap(block):
            self._child_gone(index, pid, status)
            if self.stop_mode is None and index < self.concurrency:
                self._start_member(index)

    def _child_gone(self, index: int, pid: int, status: int) -> None:
        """A pool process ended: record what each of its slots was running, then give back
        everything its consumer still holds (the started tasks charged, as they ask)."""
        consumer = self.consumers.pop(index, f"{self.incarnation}/{pid}-{index}")
        code = os.waitstatus_to_exitcode(status)
        try:
            charged: list[Delivery] = []
            for slot in self.pool.slots_of(index):
                running = self.slots.read(slot)
                self.slots.clear(slot)
                self.slots.flag_terminate(slot, False)
                killed_for_limit = self.timed_out.pop(slot, None)
                terminated = self.terminated.pop(slot, None)
                if terminated is not None and running is not None and running.info.get("id") == terminated:
                    self._record_terminated(running, -code if code < 0 else None)
                elif killed_for_limit is not None:
                    if killed_for_limit.info.get("id"):  # else unknown: the release below returns it
                        self._record_time_limit(killed_for_limit)
                elif running is not None and running.info.get("id") and self.stop_mode != "cold":
                    charged += self._record_lost(running, code)
            self._record_dead(self.broker.release(consumer, self.all_queues, charged=charged))
        except BrokerError as exc:
            # This worker's heartbeat keeps the lease alive, so nobody else would ever take these
            # messages: keep trying each second until the broker is back.
            self.unreleased.add(consumer)
            logger.error("could not return the messages of pool process %d yet: %s", pid, exc)

    def _enforce_hard_limits(self, now: float) -> float:
        """Kill processes past their task's hard limit; return when the next limit falls due."""
        soonest = now + 3600
        if not self.pool.processes:
            return soonest
        killed = set()
        for pid, index in self.pool.slot_owners():
            running = self.slots.read(index)
            if running is None or not running.hard_limit or index in self.timed_out or pid in killed:
                continue
            due = running.started + running.hard_limit
            if now >= due:
                self.timed_out[index] = running
                killed.add(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            else:
                soonest = min(soonest, due)
        return soonest

    # -- remote control hooks -------------------------------------------------------------------
    def pool_processes(self) -> list[tuple[int, int]]:
        """``(pid, slot index)`` of every slot of the pool (threads share the supervisor's pid)."""
        return self.pool.slot_owners()

    def terminate(self, task_ids: set[str], signum: int) -> list[str]:
        """Stop the processes running any of ``task_ids`` with ``signum``; the task is recorded
        REVOKED when its process is reaped and the process is replaced."""
        done: list[str] = []
        if not self.pool.processes:
            logger.warning("the %s pool cannot terminate running tasks", self.pool)
            return done
        if self.pool.width > 1:
            # A signal would end every task of an asyncio pool process: the flag asks the
            # process to cancel that one task (worker/async_consumer.py), which records it.
            for _, index in self.pool.slot_owners():
                running = self.slots.read(index)
                if running is not None and running.info.get("id") in task_ids:
                    self.slots.flag_terminate(index)
                    done.append(running.info["id"])
            return done
        for pid, index in self.pool.slot_owners():
            running = self.slots.read(index)
            if running is not None and running.info.get("id") in task_ids:
                self.terminated[index] = running.info["id"]
                self.slots.flag_terminate(index)
                try:
                    os.kill(pid, signum)
                    done.append(running.info["id"])
                except ProcessLookupError:
                    pass
        return done

    def resize(self, delta: int) -> int:
        """Grow or shrink the pool; shrinking stops the newest processes warmly."""
        target = max(1, min(self.slots.count // self.pool.width, self.concurrency + delta))
        old, self.concurrency = self.concurrency, target
        for index in range(old, target):
            self._start_member(index)
        self.pool.shrink(target)
        os.write(self._wake_w, b"x")
        return target
