"""What readers of the event stream share: following it, and folding its events into the
latest state of each task and worker.

``celeriac events``, the demo and the dashboard all stand on these two pieces, so a task reads
the same (state, timestamps, worker, progress) wherever it is shown.
"""

from .reader import EventReader, follow
from .state import TaskRecord, TaskStates, WorkerStates, task_state

__all__ = [
    # Following the stream
    "EventReader", "follow",
    # Folding events into state
    "TaskRecord", "TaskStates", "WorkerStates", "task_state",
]
