"""celeriac: a distributed task queue with Celery's API.

``import celeriac`` stays light: it imports neither redis nor any web framework.
"""

from . import states
from .app import Celery, current_app, shared_task
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
from .result import AsyncResult, EagerResult, GroupResult
from .task import Signature, Task

__version__ = "0.1.0"

__all__ = [
    # Apps and tasks
    "Celery",
    "Signature",
    "Task",
    "current_app",
    "shared_task",
    # Results and states
    "AsyncResult",
    "EagerResult",
    "GroupResult",
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
    if name in ("crontab", "schedule", "solar"):
        from . import schedules

        return getattr(schedules, name)
    raise AttributeError(f"module 'celeriac' has no attribute {name!r}")
