"""What the supervisor records itself, for tasks it saw end without finishing: killed for
their hard time limit, terminated by a revoke, lost with their process, dead-lettered as poison
messages; and the worker and task events it sends. Mixed into ``supervisor.Supervisor``."""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING, Any

from .. import message, signals, states
from ..brokers.base import Broker, Delivery
from ..canvas import followups
from ..events import EVENT_LOG, EventCap, event
from ..exceptions import BrokerError, SignatureError, TimeLimitExceeded, WorkerLostError
from ..execution import ExceptionInfo, exception_fields, send_revoked
from ..message import ChordRef
from ..task import Context
from .slots import Running

if TYPE_CHECKING:
    from ..app import Celery

logger = logging.getLogger("celeriac.worker")


class LossRecorder:
    """Results, acks, events and signals for the tasks a pool process could not finish itself."""

    if TYPE_CHECKING:  # the supervisor's, set in its __init__ / run()
        app: Celery
        hostname: str
        broker: Broker
        backend: Any
        events: bool
        event_cap: EventCap

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
