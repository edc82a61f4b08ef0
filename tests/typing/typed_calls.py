"""Code a user writes against celeriac, checked by mypy --strict in test_typed_api.py.

Every line that must NOT type-check ends with the exact error(s) mypy reports, each after
``# E:``; every other line must type-check (``assert_type`` pins what a call returns).
Never imported or run: mypy reads it.
"""

from __future__ import annotations

from typing import Any, assert_type

from celeriac import Celery, Task, shared_task
from celeriac.result import AsyncResult, EagerResult
from celeriac.schedules import crontab

app = Celery("typed")


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task()
def greet(name: str, punctuation: str = "!") -> str:
    return name + punctuation


@app.task(name="typed.mul", max_retries=2, bind=False)
def mul(x: float, y: float) -> float:
    return x * y


@app.task(bind=True, max_retries=3)
def retrying(self: Task[Any, Any], url: str) -> list[str]:
    return [url, str(self.request.retries)]


@app.task
async def fetch(url: str) -> bytes:
    return url.encode()


@app.task(bind=True)
async def fetch_bound(self: Task[Any, Any], url: str, retries: int = 0) -> dict[str, int]:
    return {url: retries}


@shared_task
def shared(x: int) -> str:
    return str(x)


@shared_task(bind=True, ignore_result=True)
def shared_bound(self: Task[Any, Any], x: int) -> None:
    pass


# Called directly, a task is its function.
assert_type(add(1, 2), int)
assert_type(greet("a"), str)
assert_type(retrying("u"), list[str])
assert_type(shared(1), str)

# Sent, it gives a result of its return type.
assert_type(add.delay(1, 2), AsyncResult[int])
assert_type(add.delay(1, y=2).get(), int)
assert_type(add.delay(1, 2).get(timeout=5, propagate=True), int)
assert_type(greet.delay("a", punctuation="?").get(), str)
assert_type(mul.delay(1, 2.5).get(), float)
assert_type(retrying.delay("u").get(), list[str])
assert_type(fetch.delay("u").get(), bytes)
assert_type(fetch_bound.delay("u", retries=1).get(), dict[str, int])
assert_type(shared.delay(1).get(), str)
assert_type(shared_bound.delay(1).get(), None)
assert_type(add.apply((1, 2)), EagerResult[int])
assert_type(add.AsyncResult("some-id").get(), int)

# apply_async takes args and kwargs as data, as in Celery's stubs: not checked against the function.
assert_type(add.apply_async((1, 2), countdown=3), AsyncResult[int])
assert_type(add.apply_async(args=["x"], kwargs={"z": 1}, queue="q"), AsyncResult[int])


async def direct_async_call() -> None:
    # Called directly, an async task is its coroutine function.
    assert_type(await fetch("u"), bytes)
    assert_type(await fetch_bound("u"), dict[str, int])


# Wrong arguments are type errors.
add.delay("a", "b", "c")  # E: Too many arguments for "delay" of "Task"  [call-arg] # E: Argument 1 to "delay" of "Task" has incompatible type "str"; expected "int"  [arg-type] # E: Argument 2 to "delay" of "Task" has incompatible type "str"; expected "int"  [arg-type]
add.delay(1)  # E: Missing positional argument "y" in call to "delay" of "Task"  [call-arg]
add(1, "2")  # E: Argument 2 to "__call__" of "Task" has incompatible type "str"; expected "int"  [arg-type]
greet.delay("a", exclamation="!")  # E: Unexpected keyword argument "exclamation" for "delay" of "Task"  [call-arg]
retrying.delay(1)  # E: Argument 1 to "delay" of "Task" has incompatible type "int"; expected "str"  [arg-type]
fetch.delay()  # E: Missing positional argument "url" in call to "delay" of "Task"  [call-arg]
shared.delay("1")  # E: Argument 1 to "delay" of "Task" has incompatible type "str"; expected "int"  [arg-type]
wrong: str = add.delay(1, 2).get()  # E: Incompatible types in assignment (expression has type "int", variable has type "str")  [assignment]

# A misspelt or ill-typed task option is an error, as it is at run time.
@app.task(max_retry=3)  # E: No overload variant of "task" of "Celery" matches argument type "int"  [call-overload] # E: Untyped decorator makes function "misspelt" untyped  [untyped-decorator]
def misspelt(x: int) -> int:
    return x


@app.task(bind=True, time_limit="60")  # E: No overload variant of "task" of "Celery" matches argument types "bool", "str"  [call-overload] # E: Untyped decorator makes function "ill_typed" untyped  [untyped-decorator]
def ill_typed(self: Task[Any, Any]) -> None:
    pass


@app.task(autoretry_for=[ValueError], retry_backoff=2, rate_limit="10/m", expires=60, queue="low")
def with_options(x: int) -> int:
    return x


assert_type(with_options.delay(1).get(), int)


def plain(x: int) -> str:
    return str(x)


registered = app.task(plain, name="typed.plain", queue="low")  # called, not as a decorator
assert_type(registered.delay(1).get(), str)

# app.conf: each setting has its type; an unknown name is an error.
assert_type(app.conf.task_default_queue, str)
assert_type(app.conf.result_expires, float | None)
assert_type(app.conf.task_always_eager, bool)
assert_type(app.conf.beat_schedule, dict[str, Any])
app.conf.task_always_eager = True
app.conf.task_default_queue = 3  # E: Incompatible types in assignment (expression has type "int", variable has type "str")  [assignment]
queue = app.conf.task_default_queu  # E: "Settings" has no attribute "task_default_queu"; maybe "task_default_queue"?  [attr-defined]

# crontab's fields take what Celery's do.
crontab(minute=0, hour="*/3", day_of_week="mon-fri")
crontab(minute=[0, 30], day_of_month={1, 15}, month_of_year="1-6")
crontab(minute=1.5)  # E: Argument "minute" to "crontab" has incompatible type "float"; expected "int | str | Iterable[int | str]"  [arg-type]
crontab(minutes=5)  # E: Unexpected keyword argument "minutes" for "crontab"; did you mean "minute"?  [call-arg]
