"""The worker's standing with the broker, kept by the supervisor: its heartbeat (the lease on
everything its pool holds), the broker's lineage (a restart or failover that may have lost acks),
recovery of other workers' lapsed leases and of an earlier incarnation's, promotion of due delayed
messages, and the final release. Mixed into ``supervisor.Supervisor``."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import msgspec

from .. import __version__, signals
from ..brokers.base import BEAT_FORGOTTEN, BEAT_LAPSED, Delivery
from ..exceptions import BrokerError
from .identity import proved_dead
from .losses import LossRecorder
from .pools import Pool
from .reconcile import give_back_gone
from .slots import Slots

if TYPE_CHECKING:
    from ..app import Celery

logger = logging.getLogger("celeriac.worker")


class LeaseKeeper(LossRecorder):
    """Heartbeat, lineage, recovery and promotion: one round trip a second or a lease, none per task."""

    if TYPE_CHECKING:  # the supervisor's, set in its __init__
        app: Celery
        queues: list[str]
        consumed: set[str]
        concurrency: int
        pool: Pool
        prefetch: int
        slots: Slots
        consumers: dict[int, str]
        unreleased: set[str]
        incarnation: str
        started_at: float
        _stop_event: threading.Event
        lease: float
        first_beat: bool
        beat_ok_at: float
        beat_failed: bool
        lineage: str | None
        next_lineage: float
        gone_unreconciled: bool
        identity: dict[str, Any]

        def pool_processes(self) -> list[tuple[int, int]]: ...

    def info(self) -> dict[str, Any]:
        processed, failed = self.slots.totals()
        active = sum(1 for _, index in self.pool_processes() if self.slots.read(index) is not None)
        return {"hostname": self.hostname, "pid": os.getpid(), "pool": self.pool.name,
                "concurrency": self.concurrency, "queues": list(self.queues), "version": __version__,
                "started": self.started_at, "loadavg": list(os.getloadavg()),
                "prefetch_multiplier": self.prefetch, "pool_pids": sorted(pid for pid, _ in self.pool.members()),
                "processed": processed, "failed": failed, "active": active, "incarnation": self.incarnation,
                **self.identity}

    @property
    def all_queues(self) -> list[str]:
        self.consumed.update(self.queues)
        return sorted(self.consumed)

    def running(self) -> list[Delivery]:
        """What the pool has started (from the slots): charged if this worker dies."""
        out = []
        for _, index in self.pool_processes():
            running = self.slots.read(index)
            if running is not None and "tag" in running.info:
                out.append(self._delivery(running))
        return out

    def _heartbeat(self) -> None:
        sent = time.monotonic()
        try:
            info = self.info()
            verdict = self.broker.heartbeat(self.incarnation, msgspec.json.encode(info), self.all_queues,
                                            running=self.running(), first=self.first_beat)
        except BrokerError as exc:
            logger.error("heartbeat failed: %s", exc)
            self.beat_failed = True
            return
        self.first_beat = False
        self.beat_ok_at = sent
        lapsed = verdict in (BEAT_LAPSED, BEAT_FORGOTTEN)
        if verdict == BEAT_LAPSED:
            logger.error("worker %s missed its lease (paused, or cut off from the broker): tasks it held may "
                         "run elsewhere; its pool finishes them only where it still holds the message",
                         self.hostname)
        elif verdict == BEAT_FORGOTTEN:
            logger.critical("the broker no longer knows this worker: it lost its data (a Redis restarted "
                            "without persistence, or flushed?). Tasks queued before may be gone.")
            self._worker_event("worker-broker-lost-data")
        # The broker extended the lease to its now + lease, at or after ``sent``; a third of a
        # lease is kept as margin for writes that are slow to reach it.
        self.slots.lease_renewed(sent + self.lease * 2 / 3, lapsed)
        self._check_lineage(sent)
        self._worker_event("worker-heartbeat", **info)
        if signals.heartbeat_sent.receivers:
            signals.heartbeat_sent.send(sender=self)

    def _check_lineage(self, now: float) -> None:
        """Once a lease, and at the first beat after a failed one: did the broker come back as
        another store (restarted, failed over), which may have lost acks it had confirmed? Then
        pool processes give back what it leases to them but they do not hold, and this process
        does so for pool processes that ended (worker/reconcile.py). One round trip a lease,
        none per task; brokers that never lose a confirmed write answer None without one."""
        if now < self.next_lineage and not self.beat_failed:
            return
        self.beat_failed = False
        self.next_lineage = now + self.lease
        try:
            lineage = self.broker.lineage()
        except BrokerError as exc:
            logger.debug("could not read the broker's lineage: %s", exc)
            self.next_lineage = now  # at the next beat
            return
        previous, self.lineage = self.lineage, lineage
        if previous is None or lineage == previous:
            return
        logger.warning("the broker came back as another store (a restart or failover): acks it had confirmed may "
                       "be lost, so the pool gives back what the broker says it holds but it does not")
        self.slots.broker_changed()
        self.gone_unreconciled = True
        self._reconcile_gone()

    def _reconcile_gone(self) -> None:
        try:
            give_back_gone(self.broker, self.incarnation, set(self.consumers.values()), self.all_queues)
            self.gone_unreconciled = False
        except BrokerError as exc:
            logger.error("could not check the leases of ended pool processes yet: %s", exc)

    def _evict_predecessors(self) -> None:
        """A restart under the same name: give back at once what an earlier incarnation held
        when its process is provably gone (same machine, PID dead or reused), rather than wait
        for its lease to lapse."""
        try:
            records = [r for r in self.broker.workers()
                       if r.name == self.hostname and r.incarnation and r.incarnation != self.incarnation]
            for record in records:
                try:
                    info = msgspec.json.decode(record.info) if record.info else {}
                except msgspec.DecodeError:
                    continue
                if isinstance(info, dict) and proved_dead(info):
                    logger.warning("%s restarted: the tasks of its previous process (pid %s) go back to their "
                                   "queues now", self.hostname, info.get("pid"))
                    self._record_dead(self.broker.evict(record.incarnation))
        except BrokerError as exc:
            logger.error("could not check for an earlier incarnation (its leases lapse by themselves): %s", exc)

    def _recover(self) -> None:
        try:
            for consumer in sorted(self.unreleased):
                self.broker.release(consumer, self.all_queues)
                self.unreleased.discard(consumer)
            if self.gone_unreconciled:
                self._reconcile_gone()
            if time.monotonic() - self.beat_ok_at > self.lease / 2:
                return  # our own view may be stale: a worker cut off must not judge others
            self._record_dead(self.broker.recover(self.incarnation))
        except BrokerError as exc:
            logger.error("recovery failed: %s", exc)

    def _promote_loop(self) -> None:
        """Move due delayed messages to their queues, waking at the soonest due time."""
        broker = self.app.new_broker()
        wait_delayed = getattr(broker, "wait_delayed", None)
        try:
            while not self._stop_event.is_set():
                try:
                    wait = broker.promote(self.queues)
                except BrokerError as exc:
                    logger.error("promoting delayed tasks failed: %s", exc)
                    wait = 1.0
                timeout = 1.0 if wait is None else min(wait, 1.0)
                if timeout <= 0:
                    continue
                if wait_delayed is not None:
                    try:
                        wait_delayed(self.queues, timeout)
                    except BrokerError:
                        self._stop_event.wait(timeout)
                else:
                    self._stop_event.wait(min(timeout, 0.05))
        finally:
            broker.close()

    def _final_release(self) -> None:
        """Whatever this worker still holds goes back to the queue before it says goodbye."""
        try:
            held = self.broker.held(self.incarnation, self.all_queues)
            for consumer in sorted({name for name, _ in held}):
                self.broker.release(consumer, self.all_queues)
        except BrokerError as exc:
            logger.error("could not return held messages (they return when the lease lapses): %s", exc)
