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

import msgspec

from .. import __version__, message, signals, states
from ..brokers.base import BEAT_FORGOTTEN, BEAT_LAPSED, Delivery
from ..canvas import followups
from ..events import EVENT_LOG, EventCap, event
from ..exceptions import BrokerError, SignatureError, TimeLimitExceeded, WorkerLostError
from ..execution import ExceptionInfo, exception_fields, send_revoked
from ..message import ChordRef
from ..task import Context
from .identity import identity, new_incarnation, proved_dead
from .pools import POOLS, Pool
from .reconcile import give_back_gone
from .remote import Remote
from .slots import Running, Slots

if TYPE_CHECKING:
    from ..app import Celery

logger = logging.getLogger("celeriac.worker")


class Supervisor:
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

    def _delivery(self, running: Running) -> Delivery:
        info = running.info
        return Delivery(info["q"], int(info["p"]), b"", info["tag"], int(info.get("d", 0)))

    def _store_failure(self, task_id: str, name: str | None, exc: BaseException, why: str,
                       chord: ChordRef | None = None) -> None:
        meta = {"task_id": task_id, "status": states.FAILURE, "name": name, "result": str(exc),
                "worker": self.hostname, **exception_fields(exc, why)}
        self._write_final(task_id, [(task_id, message.dumps(meta), True)], chord)

    def _write_final(self, task_id: str, records: list[tuple[str, bytes, bool]], chord: ChordRef | None) -> None:
        """Store a task's final record; a chord header task also fails its chord (followups)."""
        records = followups.count_failed(self.app, chord, task_id, records)
        if records:
            self.backend.write(records)

    @staticmethod
    def _chord(info: dict[str, Any]) -> ChordRef | None:
        return ChordRef(*info["ch"]) if info.get("ch") else None

    def _record_terminated(self, running: Running, signum: int | None) -> None:
        info = running.info
        logger.warning("Task %s[%s] terminated (revoked)", info["name"], info["id"])
        meta = {"task_id": info["id"], "status": states.REVOKED, "name": info["name"], "result": "terminated",
                "exc_type": "TaskRevoked", "exc_module": "celeriac.exceptions", "exc_message": ["terminated"],
                "worker": self.hostname}
        self._write_final(info["id"], [(info["id"], message.dumps(meta), True)], self._chord(info))
        self.broker.ack([self._delivery(running)])
        self._task_event("task-revoked", info, terminated=True)
        if signals.task_revoked.receivers:
            send_revoked(self.app.tasks.get(info["name"]), self._request(running), terminated=True,
                         signum=signum)

    def _record_time_limit(self, running: Running) -> None:
        info = running.info
        # The task's own limit: an asyncio pool's slot carries it plus the grace before a kill.
        limit = float(info.get("hard") or running.hard_limit)
        exc = TimeLimitExceeded(f"TimeLimitExceeded({limit:g})")
        logger.error("Hard time limit (%gs) exceeded for %s[%s]", limit, info["name"], info["id"])
        why = f"TimeLimitExceeded: hard time limit ({limit:g}s) exceeded; the process running it was killed"
        self._store_failure(info["id"], info["name"], exc, why, self._chord(info))
        task = self.app.tasks.get(info["name"])
        if info.get("al") and task is not None and not task.option("acks_on_failure_or_timeout",
                                                                   "task_acks_on_failure_or_timeout"):
            # Dead-lettered, not requeued as Celery does: a task that always overruns its limit
            # would otherwise run forever (docs/differences.md).
            self.broker.dead_letter([self._delivery(running)], f"{why}; acks_on_failure_or_timeout is off")
            self._task_event("task-failed", info, exception=repr(exc))
            self._task_event("task-dead-lettered", info, reason=why)
        else:
            self.broker.ack([self._delivery(running)])
            self._task_event("task-failed", info, exception=repr(exc))
        self._send_failure(running, exc, "TimeLimitExceeded")

    def _request(self, running: Running) -> Context:
        """What the supervisor knows of a running task, as a request (arguments as shown)."""
        info = running.info
        return Context(id=info["id"], task=info["name"], args=info.get("args"), kwargs=info.get("kwargs"),
                       hostname=self.hostname, called_directly=False,
                       delivery_info={"queue": info["q"], "priority": info["p"], "routing_key": info["q"]})

    def _send_failure(self, running: Running, exc: BaseException, text: str) -> None:
        """A task that ended with its process (hard time limit, a lost process) failed too:
        alerting hung on ``task_failure`` must hear of it, here in the main process."""
        if signals.task_failure.receivers:
            request = self._request(running)
            signals.task_failure.send(sender=self.app.tasks.get(request.task or ""), task_id=request.id,
                                      exception=exc, args=request.args, kwargs=request.kwargs, traceback=None,
                                      einfo=ExceptionInfo(exc, f"{text}: {exc}"))

    def _record_lost(self, running: Running, code: int) -> list[Delivery]:
        """A task whose process died under it: what to charge when the process's messages go
        back (nothing when it is recorded as failed and acked here)."""
        info = running.info
        how = f"signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"exit code {code}"
        if info.get("al") and info.get("rl"):
            # The default (task_reject_on_worker_lost=True): an OOM-killed or crashed process's
            # task runs again, charged one redelivery, so a poison message is still capped.
            logger.error("Process running %s[%s] died (%s): redelivering it", info["name"], info["id"], how)
            return [self._delivery(running)]
        exc = WorkerLostError(f"Worker exited prematurely: {how}.")
        logger.error("Process running %s[%s] died: %s", info["name"], info["id"], exc)
        self._store_failure(info["id"], info["name"], exc, f"WorkerLostError: {exc}", self._chord(info))
        self._task_event("task-failed", info, exception=repr(exc))
        self._send_failure(running, exc, "WorkerLostError")
        self.broker.ack([self._delivery(running)])
        return []

    def _record_dead(self, dead: list[Delivery]) -> None:
        """Record FAILURE for messages dead-lettered after too many deaths, so callers see why."""
        for delivery in dead:
            task_id = message.peek_id(delivery.body)
            if not task_id:
                continue
            try:
                # Only the name is wanted: the arguments are never unpickled here, and a message
                # that accept_content or the signing key refuses names nothing.
                envelope = message.decode(delivery.body, accept=frozenset(self.app.conf.accept_content),
                                          signing_key=self.app.signing_key, arguments=False)
                name: str | None = envelope.task
                chord = envelope.flow.chord if envelope.flow is not None else None
            except SignatureError as exc:
                if not exc.authentic:
                    continue  # an id nobody vouches for: recording it could overwrite a real result
                name, chord = None, None
            except Exception:
                name, chord = None, None
            why = (f"redelivered {delivery.redeliveries} times and the process running it died each "
                   "time; dead-lettered as a poison message")
            logger.error("Task %s[%s] dead-lettered: %s", name, task_id, why)
            lost = WorkerLostError(why)
            self._store_failure(task_id, name, lost, f"WorkerLostError: {why}", chord)
            self._task_event("task-dead-lettered", {"id": task_id, "name": name, "q": delivery.queue},
                             reason=why)
            # Its final failure: alerting hung on task_failure hears of it.
            self._send_failure(Running(0.0, 0.0, {"id": task_id, "name": name, "q": delivery.queue,
                                                  "p": delivery.priority}), lost, "WorkerLostError")

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

    # -- leases, recovery, delayed --------------------------------------------------------------
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

    def _worker_event(self, kind: str, **fields: Any) -> None:
        if not self.events:
            return
        fields.setdefault("hostname", self.hostname)
        try:
            data = event(kind, **fields)
            self.broker.log_append(EVENT_LOG, data, self.event_cap(data))
        except BrokerError as exc:
            logger.debug("could not send %s: %s", kind, exc)

    def _task_event(self, kind: str, info: dict[str, Any], **fields: Any) -> None:
        remote = getattr(self, "remote", None)  # made in run()
        if remote is not None and not remote.task_events:  # disable_events: task events off, worker's own on
            return
        self._worker_event(kind, uuid=info.get("id"), name=info.get("name"), queue=info.get("q"), **fields)

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
