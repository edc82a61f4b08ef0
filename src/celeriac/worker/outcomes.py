"""What a pool process records for messages that do not run or end badly: refused as bad input
(dead-lettered, FAILURE with why), discarded unrun (revoked, expired, terminated before it ran),
failed with ``acks_on_failure_or_timeout`` off (dead-lettered); and the event and log line of how
a task ended. Mixed into ``consumer.Consumer``; a plain success's event is sent inline there."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import message, signals, states
from ..canvas import followups
from ..events import event, safe_repr
from ..execution import Outcome, exception_fields, send_revoked

if TYPE_CHECKING:
    from ..app import Celery
    from ..brokers.base import Delivery
    from ..task import Task
    from .flusher import Flusher

logger = logging.getLogger("celeriac.worker")


class OutcomeRecorder:
    """Records, dead letters, events and signals for the messages the per-task path turns away."""

    if TYPE_CHECKING:  # the consumer's, set in its __init__ / run()
        app: Celery
        hostname: str
        flusher: Flusher
        events: bool

        def _event(self, kind: str, envelope: message.Envelope, **fields: Any) -> None: ...
        def _request(self, envelope: message.Envelope, delivery: Delivery) -> Any: ...

    def _outcome_event(self, envelope: message.Envelope, outcome: Outcome) -> None:
        state = outcome.state
        if state == states.SUCCESS:
            self._event("task-succeeded", envelope, runtime=outcome.runtime, result=safe_repr(outcome.result))
        elif state == states.FAILURE:
            self._event("task-failed", envelope, runtime=outcome.runtime, exception=safe_repr(outcome.exc),
                        traceback=outcome.traceback)
        elif state == states.RETRY:
            self._event("task-retried", envelope, exception=safe_repr(outcome.exc), countdown=outcome.retry_in)
        elif state == states.REJECTED:
            self._event("task-rejected", envelope, requeue=outcome.requeue, exception=safe_repr(outcome.exc))

    def _refuse(self, delivery: Delivery, task_id: str | None, name: str | None, exc: Exception,
                internal: bool = False, envelope: message.Envelope | None = None) -> None:
        """Bad input: dead-letter the message and, when it has an id, record FAILURE with why."""
        reason = f"{'internal error: ' if internal else ''}{type(exc).__name__}: {str(exc)[:500]}"
        logger.error("Refused message %s: %s", task_id or delivery.tag, reason)
        records = []
        if task_id:
            meta = {"task_id": task_id, "status": states.FAILURE, "name": name, "result": str(exc),
                    "worker": self.hostname, **exception_fields(exc, reason)}
            records.append((task_id, message.dumps(meta), True))
        if envelope is not None and envelope.flow is not None:  # a chord's header task: failed
            records = followups.never_ran(self.app, envelope, records)
        self.flusher.dead_letter(delivery, reason, records)
        if self.events:
            self.flusher.event(event("task-dead-lettered", uuid=task_id, name=name, hostname=self.hostname,
                                     reason=reason, queue=delivery.queue))

    def _finish_without_running(self, task: Task[Any, Any], delivery: Delivery, envelope: message.Envelope,
                                state: str, why: str, ack: bool = True) -> None:
        meta = {"task_id": envelope.id, "status": state, "name": envelope.task, "result": why,
                "exc_type": "TaskRevoked", "exc_module": "celeriac.exceptions", "exc_message": [why],
                "worker": self.hostname}
        records = [(envelope.id, message.dumps(meta), True)]
        if envelope.flow is not None:  # a chord's header task counts as failed, with its record
            records = followups.never_ran(self.app, envelope, records)
        if ack:
            self.flusher.finish(delivery, records)
        else:
            self.flusher.store(records)
        terminated = why == "terminated"  # cancelled while running (-P asyncio's revoke(terminate=True))
        self._event("task-revoked", envelope, expired=why == "expired", **({"terminated": True} if terminated else {}))
        if signals.task_revoked.receivers:
            send_revoked(task, self._request(envelope, delivery), expired=why == "expired", terminated=terminated)

    def _dead_letter_failed(self, delivery: Delivery, context: Any, outcome: Outcome,
                            records: list[tuple[str, bytes, bool]]) -> None:
        """acks_on_failure_or_timeout=False: Celery rejects the message without requeue (to a
        dead-letter exchange on RabbitMQ); here it goes to the queue's dead letters, where it
        can be requeued by hand. The FAILURE is stored all the same."""
        exc = outcome.exc
        reason = f"task failed ({type(exc).__name__}: {str(exc)[:500]}) and acks_on_failure_or_timeout is off"
        logger.warning("Task %s[%s] dead-lettered: %s", context.task, context.id, reason)
        self.flusher.dead_letter(delivery, reason, records)
        if self.events:
            self.flusher.event(event("task-dead-lettered", uuid=context.id, name=context.task,
                                     hostname=self.hostname, reason=reason, queue=delivery.queue))


def log_outcome(task: Task[Any, Any], name: str, task_id: str, outcome: Outcome) -> None:
    """The worker log's line for how a task ended, in Celery's words."""
    state = outcome.state
    if state == states.SUCCESS:
        logger.info("Task %s[%s] succeeded in %.6fs: %r", name, task_id, outcome.runtime, outcome.result)
    elif state == states.RETRY:
        logger.info("Task %s[%s] retry: Retry in %gs: %r", name, task_id, outcome.retry_in, outcome.exc)
    elif state == states.FAILURE and task.throws and isinstance(outcome.exc, task.throws):
        logger.info("Task %s[%s] raised expected: %r", name, task_id, outcome.exc)
    elif state == states.FAILURE:
        logger.error("Task %s[%s] raised unexpected: %r\n%s", name, task_id, outcome.exc, outcome.traceback or "")
    elif state == states.REJECTED:
        logger.warning("Task %s[%s] rejected: %s", name, task_id, outcome.exc)
