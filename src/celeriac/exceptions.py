"""Every error celeriac raises, under one root.

    CeleriacError
    ├── ConfigurationError          a setting is unknown, ill-typed or contradictory
    ├── EncodeError                 arguments cannot be put on the wire (raised at the caller)
    ├── DecodeError                 bytes from the broker are not a message we accept
    │   └── SignatureError          unsigned, badly signed or too old, with a signing key set
    ├── NotRegistered               a task name this app does not know
    ├── BrokerError                 the broker is unreachable or refused a command
    │   ├── BrokerFull              the broker has no room (disk full, maxmemory); nothing was written
    │   ├── NotReplicated           written on the master, but too few replicas confirmed it in time
    │   └── OutcomeUnknown          the connection was lost after the command was sent: it may have been applied
    ├── ResultTimeout               AsyncResult.get(timeout=...) ran out
    ├── TaskRevoked (as result)     the task was revoked or expired before it ran
    ├── ChordError (as result)      a chord's header task failed, so its body did not run
    ├── IncompleteStream            AsyncResult.iterdeps/collect met a result not ready yet
    └── TaskControl                 raised inside a task to steer the worker, never stored as a result
        ├── Retry                   self.retry(): run again later
        ├── Reject                  refuse the message (requeue or dead-letter it)
        └── Ignore                  drop the message silently

    TimeLimit errors are raised inside user code, so they derive from BaseException-level
    parents users already catch: SoftTimeLimitExceeded is an Exception (a task may clean up),
    TimeLimitExceeded and WorkerLostError are recorded by the worker, never raised in the task.

    RemoteTaskError                 the base of exceptions rebuilt from a stored FAILURE

    Celery's names for the same errors are aliases, so ``except`` clauses carry over:
    CeleryError, ImproperlyConfigured, TaskPredicate, TaskRevokedError.
"""

from __future__ import annotations

from typing import Any


class CeleriacError(Exception):
    """Root of every celeriac exception."""


class ConfigurationError(CeleriacError, ValueError):
    pass


class EncodeError(CeleriacError, TypeError):
    pass


class DecodeError(CeleriacError, ValueError):
    pass


class SignatureError(DecodeError):
    """Bytes that should carry a valid, fresh signature (``task_message_signing_key``) do not.

    ``authentic`` is true when the signature held and only the age was wrong: the bytes (a task
    id, say) then did come from a key holder."""

    authentic: bool = False


class NotRegistered(CeleriacError, KeyError):
    def __str__(self) -> str:  # KeyError quotes its argument; a plain message reads better
        return str(self.args[0]) if self.args else "task not registered"


class BrokerError(CeleriacError, ConnectionError):
    pass


class BrokerFull(BrokerError):
    pass


class NotReplicated(BrokerError):
    """An enqueue reached the Redis master, but fewer replicas than ``wait_replicas`` confirmed
    it within ``wait_timeout``. The message is queued and normally runs; only a failover before a
    replica copies it loses it. Sending it again risks running it twice, so nothing retries it."""


class OutcomeUnknown(BrokerError):
    """The broker went away after a command reached it and before its reply came back: it may or
    may not have been applied. From ``apply_async``: the task may have been queued (and then
    runs), so sending it again may run it twice; it was not refused."""


class ResultTimeout(CeleriacError, TimeoutError):
    """``AsyncResult.get`` waited ``timeout`` seconds without a ready state.

    It subclasses the builtin ``TimeoutError`` so ``except TimeoutError`` (what Celery users
    write, since Celery's own TimeoutError shadows the builtin) keeps working.
    """


class TaskRevoked(CeleriacError):
    pass


class TaskControl(CeleriacError):
    """Raised by task code to steer the worker; never stored as the task's result."""


class Retry(TaskControl):
    """Raised by ``Task.retry``: the worker records RETRY and the message runs again later."""

    def __init__(self, message: str = "", exc: BaseException | None = None, when: float | None = None,
                 envelope: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.exc = exc
        self.when = when
        self.envelope = envelope  # the message that will run next; the worker enqueues it with the ack

    def humanize(self) -> str:
        return f"in {self.when:g}s" if self.when is not None else "now"

    def __str__(self) -> str:
        reason = f": {self.exc!r}" if self.exc is not None else ""
        return f"Retry {self.humanize()}{reason}"


class Reject(TaskControl):
    """Refuse the message. ``requeue=True`` puts it back, otherwise it is dead-lettered."""

    def __init__(self, reason: str = "", requeue: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.requeue = requeue


class Ignore(TaskControl):
    """The task asks the worker to drop its message without recording a state."""


class MaxRetriesExceededError(CeleriacError):
    pass


class SoftTimeLimitExceeded(Exception):
    """Raised inside a task when its soft time limit passes; the task may clean up and return."""


class TimeLimitExceeded(Exception):
    """Recorded when a task passed its hard time limit and its process was killed."""


class WorkerLostError(Exception):
    """Recorded when the process running a task died (os._exit, segfault, out of memory)."""


class RemoteTaskError(CeleriacError):
    """Base of exceptions rebuilt from a stored FAILURE.

    The stored type name is data: it is never imported. A builtin name (``ValueError``) is
    rebuilt as a subclass of both this class and the builtin, so ``except ValueError`` works.
    """

    remote_type: str = "Exception"
    remote_module: str = "builtins"
    remote_traceback: str | None = None


__all__ = [
    "BrokerError",
    "BrokerFull",
    "OutcomeUnknown",
    "CeleriacError",
    "ConfigurationError",
    "DecodeError",
    "EncodeError",
    "Ignore",
    "MaxRetriesExceededError",
    "NotRegistered",
    "Reject",
    "RemoteTaskError",
    "ResultTimeout",
    "Retry",
    "SignatureError",
    "SoftTimeLimitExceeded",
    "TaskControl",
    "TaskRevoked",
    "TimeLimitExceeded",
    "WorkerLostError",
    # appended: canvas and Celery's names
    "ChordError",
    "IncompleteStream",
    "CeleryError",
    "ImproperlyConfigured",
    "TaskPredicate",
    "TaskRevokedError",
    "BackendError",
    "BackendGetMetaError",
    "BackendStoreError",
    "CeleryWarning",
    "DuplicateTaskNameWarning",
    "InvalidTaskError",
    "TaskError",
    "Terminated",
    "WorkerShutdown",
    "WorkerTerminate",
]


class IncompleteStream(CeleriacError):
    """``AsyncResult.iterdeps``/``collect`` met a result whose children are not known yet."""


class ChordError(CeleriacError):
    """A chord's header task failed: the body is recorded FAILURE with this and does not run."""


# Celery's names, so code catching them keeps working with its imports changed.
CeleryError = CeleriacError
ImproperlyConfigured = ConfigurationError
TaskPredicate = TaskControl
TaskRevokedError = TaskRevoked


# The rest of celery.exceptions that Celery code imports, catches or raises.
TaskError = CeleriacError  # Celery's base of task errors; celeriac's errors share one root
InvalidTaskError = DecodeError  # a message the worker cannot accept (Celery raises it for the same)


class Terminated(CeleriacError):
    """A task ended by ``revoke(terminate=True)``. As in Celery, such a task is recorded REVOKED
    and ``get()`` raises TaskRevoked; this is the name Celery code imports for it."""


class WorkerShutdown(SystemExit):
    """Raised in a task, as in Celery: the task is recorded FAILURE with it and its worker shuts
    down warmly (running tasks finish, as on SIGTERM). In eager mode it is only the failure."""


class WorkerTerminate(SystemExit):
    """Raised in a task: recorded FAILURE, and its worker shuts down cold (as on SIGQUIT)."""


class BackendError(CeleriacError):
    """Reading or writing the result store failed."""


class BackendGetMetaError(BackendError):
    def __init__(self, *args: Any, task_id: str = "", **_: Any) -> None:
        super().__init__(*args)
        self.task_id = task_id


class BackendStoreError(BackendError):
    def __init__(self, *args: Any, state: str = "", task_id: str = "", **_: Any) -> None:
        super().__init__(*args)
        self.state = state
        self.task_id = task_id


class CeleryWarning(UserWarning):
    """Base of the warnings celeriac issues under Celery's name."""


class DuplicateTaskNameWarning(CeleryWarning):
    """Two different functions were registered under one task name; the later one wins."""
