"""``async def`` tasks without a worker: eager mode, limits by cancellation, and each
concurrent run seeing its own ``self.request``."""

from __future__ import annotations

import asyncio
import time

import pytest

from celeriac import Celery, Task, states
from celeriac.aio import execute_async, run_coroutine, run_limited
from celeriac.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celeriac.task import Context


@pytest.fixture
def app():
    app = Celery("unit-async", broker="memory://unit-async", backend="memory://", set_as_current=False)
    app.conf.task_always_eager = True
    yield app
    app.close()


def test_async_def_is_detected_for_decorated_and_class_tasks(app):
    @app.task
    async def fetch(x):
        return x

    @app.task
    def plain(x):
        return x

    class Klass(Task):  # type: ignore[type-arg]
        async def run(self, x):  # type: ignore[override]
            return x

    assert fetch.is_async and not plain.is_async and Klass.is_async


def test_eager_runs_async_tasks_with_results_request_and_retries(app):
    runs = []

    @app.task(bind=True, max_retries=2)
    async def flaky(self, x):
        await asyncio.sleep(0.001)
        runs.append(self.request.retries)
        if self.request.retries < 2:
            raise self.retry(countdown=0)
        return [x, self.request.id]

    result = flaky.delay(7)
    assert result.state == states.SUCCESS
    assert result.get() == [7, result.id]
    assert runs == [0, 1, 2]


def test_eager_async_task_called_from_a_running_loop(app):
    """Eager mode inside async code (a loop is already running): still runs, still sees its request."""
    @app.task(bind=True)
    async def who(self):
        await asyncio.sleep(0.001)
        return self.request.id

    async def caller():
        return who.delay()

    result = asyncio.run(caller())
    assert result.get() == result.id


def test_soft_limit_is_raised_inside_the_coroutine_and_it_goes_on():
    async def body():
        try:
            await asyncio.sleep(5)
        except SoftTimeLimitExceeded:
            await asyncio.sleep(0.01)  # not cancelled again: the cancellation was spent
            return "cleaned up"
        return "not interrupted"

    started = time.monotonic()
    assert run_coroutine(body(), soft=0.05) == "cleaned up"
    assert time.monotonic() - started < 2


def test_hard_limit_cancels_and_fails_with_time_limit_exceeded():
    async def body():
        await asyncio.sleep(5)

    async def main():
        await run_limited(body(), None, 0.05)

    with pytest.raises(TimeLimitExceeded):
        asyncio.run(main())


def test_hard_limit_holds_when_the_coroutine_swallows_the_cancellation():
    async def body():
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "swallowed"

    async def main():
        return await run_limited(body(), None, 0.05)

    with pytest.raises(TimeLimitExceeded):
        asyncio.run(main())


def test_concurrent_runs_each_see_their_own_request(app):
    @app.task(bind=True)
    async def who(self, pause):
        await asyncio.sleep(pause)
        return self.request.id

    async def main():
        runs = [execute_async(who, Context(id=f"id{i}", task=who.name, args=[0.01 + i * 0.01], kwargs={},
                                           called_directly=False), None, None) for i in range(5)]
        return await asyncio.gather(*(asyncio.ensure_future(run) for run in runs))

    outcomes = asyncio.run(main())
    assert [o.result for o in outcomes] == [f"id{i}" for i in range(5)]
    assert all(o.state == states.SUCCESS for o in outcomes)
