"""Tasks a caller can ask to stop: ``from celeriac.contrib.abortable import AbortableTask``.

Celery's cooperative abort, with its names and behaviour: ``result.abort()`` records the state
ABORTED in the result store; the running task checks ``self.is_aborted()`` now and then and
returns early. Nothing is interrupted: a task that never checks runs to its end, and its outcome
then replaces ABORTED as it would in Celery. For stopping a task that does not cooperate, use
``result.revoke(terminate=True)``.

    @app.task(bind=True, base=AbortableTask)
    def crawl(self, urls):
        for url in urls:
            if self.is_aborted():
                return "aborted"
            fetch(url)

    result = crawl.delay(urls)
    result.abort()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..result import AsyncResult
from ..task import Task

ABORTED = "ABORTED"

__all__ = ["ABORTED", "AbortableAsyncResult", "AbortableTask"]


class AbortableAsyncResult(AsyncResult[Any]):
    """An AsyncResult that can ask its task to abort."""

    def is_aborted(self) -> bool:
        return self.state == ABORTED

    def abort(self) -> None:
        """Ask the task to stop: it sees ``is_aborted()`` true from now on, until it finishes."""
        self.backend.store(self.id, ABORTED, None, name=self.task_name)


class AbortableTask(Task[Any, Any]):
    """A task whose caller can abort it; it polls :meth:`is_aborted` to notice."""

    def AsyncResult(self, task_id: str) -> AbortableAsyncResult:
        return AbortableAsyncResult(task_id, app=self.app, task_name=self.name)

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None,
                    **options: Any) -> Any:
        result = super().apply_async(args, kwargs, **options)
        if type(result) is AsyncResult:  # eager runs keep their EagerResult
            return self.AsyncResult(result.id)
        return result

    def is_aborted(self, **kwargs: Any) -> bool:
        """Whether the caller asked this run (or the task ``task_id``) to abort."""
        task_id = kwargs.get("task_id", self.request.id)
        return isinstance(task_id, str) and self.AsyncResult(task_id).is_aborted()
