"""celeriac: a distributed task queue with Celery's API.

``import celeriac`` stays light: it imports neither redis nor any web framework.
"""

from . import states
from .app import Celery, shared_task
from .app import current_app as _current_app
from .canvas import chain, chord, chunks, group, maybe_signature, signature, xmap, xstarmap
from .canvas.signature import Signature
from .exceptions import (
    CeleriacError,
    Ignore,
    MaxRetriesExceededError,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    TimeLimitExceeded,
    WorkerLostError,
)
from .local import AppProxy, Proxy
from .queues import Queue
from .result import AsyncResult, EagerResult, GroupResult, ResultSet
from .task import Task

__version__ = "0.1.0"


def _current_task() -> Task | None:  # type: ignore[type-arg]
    """The task this thread is running (or calling directly), None outside one."""
    stack = Task._requests.stack
    name = stack[-1].task if stack else None
    return _current_app().tasks.get(name) if name else None


#: The app made last (or a default one): ``current_app.conf``, ``current_app.send_task(...)``.
current_app = AppProxy(_current_app)
#: The task running now, as Celery's ``current_task``: ``current_task.request.id``.
current_task = Proxy(_current_task)

__all__ = [
    # Apps and tasks
    "Celery",
    "Task",
    # Canvas
    "Signature",
    "chain",
    "chord",
    "chunks",
    "group",
    "maybe_signature",
    "signature",
    "xmap",
    "xstarmap",
    "current_app",
    "current_task",
    "shared_task",
    # Queues
    "Queue",
    # Results and states
    "AsyncResult",
    "EagerResult",
    "GroupResult",
    "ResultSet",
    "states",
    # Errors
    "CeleriacError",
    "Ignore",
    "MaxRetriesExceededError",
    "Reject",
    "Retry",
    "SoftTimeLimitExceeded",
    "TimeLimitExceeded",
    "WorkerLostError",
    "__version__",
]


def __getattr__(name: str) -> object:
    # crontab lives with beat; import it only when asked so the package stays light
    if name == "subtask":  # Celery's old name for signature
        return signature
    if name in ("crontab", "schedule", "solar"):
        from . import schedules

        return getattr(schedules, name)
    raise AttributeError(f"module 'celeriac' has no attribute {name!r}")
