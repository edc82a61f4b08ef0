"""Turning a call into a stored message: routing, defaults, the envelope, publishing.

``Celery.send_task`` and ``send_many`` are thin faces over these functions; keeping them here
keeps the publish path a few calls long and readable from ``delay()`` to ``Broker.enqueue``.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import signals
from .argtypes import tag
from .brokers.base import clamp_priority
from .brokers.clock import BrokerClock
from .exceptions import BrokerError, ConfigurationError, EncodeError, NotReplicated, OutcomeUnknown
from .message import Envelope, Flow
from .options import SendOptions, put_stamps
from .queues import describe
from .task import Task

if TYPE_CHECKING:
    from .app import Celery

logger = logging.getLogger("celeriac.app")

NO_OPTIONS = SendOptions()

def new_task_id() -> str:
    """A random (version 4) UUID string, like ``str(uuid.uuid4())`` at a third of the cost:
    every call of ``delay()`` makes one."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"



def new_task_ids(count: int) -> list[str]:
    """``count`` version-4 UUID strings from one read of the OS's randomness (batch sends): the
    version and variant bits of all of them are set by two big-integer operations."""
    if count <= 0:
        return []
    clear, set_ = _uuid_masks(count)
    raw = (int.from_bytes(os.urandom(16 * count), "big") & clear) | set_
    h = raw.to_bytes(16 * count, "big").hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-{h[i + 20:i + 32]}"
            for i in range(0, 32 * count, 32)]


@functools.lru_cache(maxsize=8)
def _uuid_masks(count: int) -> tuple[int, int]:
    # Per UUID: byte 6 keeps its low nibble under version 4; byte 8 keeps six bits under 0b10.
    clear = bytes.fromhex("ffffffffffff0fff3fffffffffffffff") * count
    set_ = bytes.fromhex("00000000000040008000000000000000") * count
    return int.from_bytes(clear, "big"), int.from_bytes(set_, "big")


def to_timestamp(value: datetime | float | int, now: float) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # Celery treats naive datetimes as UTC when enable_utc is on
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    if isinstance(value, timedelta):
        return now + value.total_seconds()
    return now + float(value)  # a number of seconds from now, as Celery's expires=60



def broker_clock(app: Celery) -> BrokerClock:
    """This process's reading of the broker's clock, kept on the app (one per broker connection)."""
    broker = app.broker
    clock: BrokerClock | None = getattr(app, "_broker_clock", None)
    if clock is None or clock.broker is not broker:
        clock = BrokerClock(broker)
        app._broker_clock = clock
    return clock


def current_request() -> Any:
    stack = Task._requests.stack
    return stack[-1] if stack and not stack[-1].called_directly else None


ORIGIN = f"{os.getpid()}@{os.uname().nodename}"




def route(app: Celery, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    routes = app.conf.task_routes
    if not routes:
        return {}
    for table in routes if isinstance(routes, (list, tuple)) else [routes]:
        if callable(table):
            found = table(name, args, kwargs, {}, task=app.tasks.get(name))
            if found:
                return _destination(app, found)
            continue
        for pattern, target in table.items():
            matched = pattern.match(name) if isinstance(pattern, re.Pattern) else \
                (pattern == name or fnmatch.fnmatchcase(name, pattern))
            if matched:
                return _destination(app, target)
    return {}


def _destination(app: Celery, found: Any) -> dict[str, Any]:
    """A route's answer as options: a queue name, a Queue, or a dict whose ``queue`` may be a
    Queue and which may name only a ``routing_key`` (the queue declared with it, as RabbitMQ's
    direct exchange would pick)."""
    if not isinstance(found, dict):
        return {"queue": describe(found)[0]}
    options = dict(found)
    queue = options.get("queue")
    if queue is not None and not isinstance(queue, str):
        options["queue"] = describe(queue)[0]
    elif queue is None and options.get("routing_key"):
        for declared in app.conf.task_queues or ():
            queue_name, key = describe(declared)
            if key == options["routing_key"]:
                options["queue"] = queue_name
                break
    return options


# Celery's message headers (task protocol 2) that describe the task rather than the caller's own.
PROTOCOL_HEADERS = frozenset({"lang", "task", "id", "eta", "expires", "retries", "root_id", "parent_id",
                              "group", "origin", "timelimit", "ignore_result"})


def message_headers(envelope: Envelope) -> dict[str, Any]:
    """The headers a Celery message of this envelope would carry (the caller's own included)."""
    return {"lang": "py", "task": envelope.task, "id": envelope.id, "eta": envelope.eta,
            "expires": envelope.expires, "retries": envelope.retries, "root_id": envelope.root_id or envelope.id,
            "parent_id": envelope.parent_id, "group": envelope.group_id, "origin": envelope.origin,
            "timelimit": [envelope.time_limit, envelope.soft_time_limit],
            "ignore_result": envelope.ignore_result, **envelope.headers}


def _publish_arguments(envelope: Envelope, headers: dict[str, Any]) -> dict[str, Any]:
    return {"body": (envelope.args, envelope.kwargs, {"callbacks": None, "errbacks": None, "chain": None,
                                                      "chord": None}),
            "exchange": "", "routing_key": envelope.queue, "headers": headers}


def before_publish(envelope: Envelope, retry_policy: dict[str, Any] | None) -> None:
    """``before_task_publish``. Receivers may add headers (trace ids are the usual case): what
    they add travels with the message and is the task's ``request.headers``."""
    headers = message_headers(envelope)
    signals.before_task_publish.send(sender=envelope.task, **_publish_arguments(envelope, headers),
                                     properties={"correlation_id": envelope.id, "priority": envelope.priority,
                                                 "content_type": "application/json"},
                                     declare=[], retry_policy=retry_policy)
    for key, value in headers.items():
        if key not in PROTOCOL_HEADERS:
            envelope.headers[key] = value


def after_publish(envelope: Envelope) -> None:
    signals.after_task_publish.send(sender=envelope.task, **_publish_arguments(envelope, message_headers(envelope)))


def check_size(app: Celery, name: str, body: bytes) -> None:
    """Refuse a message workers would dead-letter unread (``task_message_max_bytes``): the
    caller learns now, and nothing is sent."""
    limit = app.conf.task_message_max_bytes
    if len(body) > limit:
        raise EncodeError(f"task {name!r}: the message is {len(body)} bytes, larger than "
                          f"task_message_max_bytes ({limit}); pass a reference (a path, a key) instead")


def sent_event(app: Celery, envelope: Envelope) -> None:
    from .events import EVENT_LOG, app_cap, event, safe_repr

    args, kwargs = app.redactor.arguments(envelope.args, envelope.kwargs, app.tasks.get(envelope.task))
    try:
        data = event(
            "task-sent", uuid=envelope.id, name=envelope.task, args=safe_repr(args), kwargs=safe_repr(kwargs),
            queue=envelope.queue, priority=envelope.priority, eta=envelope.eta, expires=envelope.expires,
            retries=envelope.retries, hostname=ORIGIN,
            # When it was sent, as the message says, not after the send returned: a worker may
            # have started it meanwhile, and the event must not look newer than that.
            **({"timestamp": envelope.sent} if envelope.sent is not None else {}))
        app.broker.log_append(EVENT_LOG, data, app_cap(app)(data))
    except BrokerError as exc:  # the task is sent; a lost event must not fail the call
        logger.debug("could not write task-sent for %s: %s", envelope.id, exc)


def call_defaults(app: Celery, name: str, task: Task[Any, Any] | None, args: Sequence[Any], kwargs: dict[str, Any],
              given: dict[str, Any]) -> dict[str, Any]:
    """Queue, priority, expiry and ignore_result from the call, the routes, the task and the
    settings, in that order of precedence."""
    queue, priority = given.get("queue"), given.get("priority")
    if queue is not None and not isinstance(queue, str):
        queue = describe(queue)[0]  # apply_async(queue=Queue(...)), as kombu allows
    routed = route(app, name, args, kwargs) if (queue is None or priority is None) else {}
    if queue is None and given.get("routing_key") and not routed.get("queue"):
        routed = {**routed, **_destination(app, {"routing_key": given["routing_key"]})}
    if priority is None:
        priority = routed.get("priority")
        if priority is None and task is not None:
            priority = task.priority
        if priority is None:
            priority = app.conf.task_default_priority
    ignore_result = given.get("ignore_result")
    if ignore_result is None:
        ignore_result = task.ignore_result if task and task.ignore_result is not None \
            else app.conf.task_ignore_result
    expires = given.get("expires")
    return {
        "queue": queue or routed.get("queue") or (task.queue if task else None) or app.default_queue,
        "priority": clamp_priority(priority), "ignore_result": bool(ignore_result),
        "expires": task.expires if expires is None and task is not None else expires,
    }

def check_arguments(name: str, args: Any, kwargs: Any) -> None:
    if args is not None and not isinstance(args, (list, tuple)):
        raise ConfigurationError(f"send_task({name!r}): args must be a list or tuple, not {type(args).__name__}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConfigurationError(f"send_task({name!r}): kwargs must be a dict, not {type(kwargs).__name__}")


def build_envelope(app: Celery, name: str, args: Sequence[Any] | None, kwargs: dict[str, Any] | None,
                   opts: SendOptions = NO_OPTIONS, *, task: Task[Any, Any] | None = None,
                   fixed: dict[str, Any] | None = None) -> tuple[Envelope, float]:
    """The envelope of one call and its delay in seconds; ``fixed`` (from :func:`call_defaults`)
    when a batch already worked out what does not depend on the arguments."""
    if args is not None and not isinstance(args, (list, tuple)):
        raise ConfigurationError(f"send_task({name!r}): args must be a list or tuple, not {type(args).__name__}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConfigurationError(f"send_task({name!r}): kwargs must be a dict, not {type(kwargs).__name__}")
    if task is None:
        task = app.tasks.get(name)
    if fixed is None:
        fixed = call_defaults(app, name, task, args or (), kwargs or {}, {
            "queue": opts.queue, "priority": opts.priority, "ignore_result": opts.ignore_result,
            "expires": opts.expires, "routing_key": opts.routing_key})
    now = time.time()
    expires = fixed["expires"]
    countdown, eta = opts.countdown, opts.eta
    # expires and an absolute eta are instants every worker judges by the broker's clock, so
    # they are stamped by it too: a producer's or a worker's skewed clock cannot shift them.
    clock_now = broker_clock(app).now() if expires is not None or (countdown is None and eta is not None) else now
    delay = 0.0
    if countdown is not None:
        delay = float(countdown)
    elif eta is not None:
        delay = to_timestamp(eta, clock_now) - clock_now
    parent = current_request()
    envelope = Envelope(
        id=opts.task_id or new_task_id(), task=name,
        args=list(args) if args else [], kwargs=dict(kwargs) if kwargs else {},
        queue=fixed["queue"], priority=fixed["priority"],
        eta=now + delay if delay > 0 else None,
        expires=to_timestamp(expires, clock_now) if expires is not None else None,
        retries=opts.retries,
        root_id=opts.root_id or (parent.root_id if parent else None),
        parent_id=opts.parent_id or (parent.id if parent else None),
        group_id=opts.group_id,
        headers=dict(opts.headers) if opts.headers else {},
        ignore_result=fixed["ignore_result"],
        time_limit=opts.time_limit, soft_time_limit=opts.soft_time_limit,
        origin=ORIGIN, sent=now,
    )
    if opts.link or opts.link_error or opts.chain or opts.chord is not None:
        envelope.flow = flow_of(opts)
    if opts.stamped_headers:
        put_stamps(envelope.headers, opts)
    if parent is not None:  # AsyncResult.children of the running task
        parent.__dict__.setdefault("children", []).append(envelope.id)
    return envelope, max(delay, 0.0)


def flow_of(opts: SendOptions) -> Flow:
    """What follows the task, as plain signature dicts (arguments tagged like the task's own)."""
    from .canvas.signature import maybe_signature

    def plain(sigs: Sequence[Any]) -> list[dict[str, Any]]:
        out = []
        for sig in sigs:
            signature = maybe_signature(sig)
            assert signature is not None
            out.append(tag(signature.as_dict()))
        return out

    return Flow(link=plain(opts.link), link_error=plain(opts.link_error), chain=plain(opts.chain),
                chord=opts.chord)

Item = tuple[str, bytes, int, float, str]  # queue, body, priority, delay, key (the task id)


class Batch:
    """Messages that share queue, priority and delay (``send_many``), kept as two lists; the
    broker's item tuples are made only as it reads them, so a 20,000-call batch does not leave
    20,000 more objects for the garbage collector to walk."""

    __slots__ = ("bodies", "delay", "ids", "priority", "queue")

    def __init__(self, queue: str, priority: int, delay: float, bodies: list[bytes], ids: list[str]) -> None:
        self.queue, self.priority, self.delay, self.bodies, self.ids = queue, priority, delay, bodies, ids

    def __len__(self) -> int:
        return len(self.bodies)

    def __iter__(self) -> Iterator[Item]:
        queue, priority, delay = self.queue, self.priority, self.delay
        for body, task_id in zip(self.bodies, self.ids, strict=True):
            yield queue, body, priority, delay, task_id


def publish(app: Celery, items: list[Item] | Batch, retry: bool | None, policy: dict[str, Any] | None) -> None:
    """Enqueue ``items``, retrying by the publish retry policy. An attempt that lost the broker
    after sending may have landed: a retry then may queue the task twice (at least once, never
    lost), and if every attempt fails the caller hears :class:`OutcomeUnknown`, not "not sent"."""
    broker = app.broker
    attempt = 0
    maybe_landed = False
    while True:
        try:
            if len(items) == 1:
                queue, body, priority, delay, key = next(iter(items))
                broker.enqueue(queue, body, priority=priority, delay=delay, key=key)
            else:
                broker.enqueue_many(items)
            return
        except NotReplicated:
            raise  # it is on the master already: sending it again could run it twice
        except BrokerError as exc:
            maybe_landed = maybe_landed or isinstance(exc, OutcomeUnknown)
            if retry is None:
                retry = app.conf.task_publish_retry
            policy = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2,
                      **(app.conf.task_publish_retry_policy or {}), **(policy or {})}
            max_retries = policy.get("max_retries")
            if not retry or (max_retries is not None and attempt >= max_retries):
                if maybe_landed and not isinstance(exc, OutcomeUnknown):
                    raise OutcomeUnknown(f"{_what(items)} may have been queued: an earlier attempt lost the broker "
                                         f"after sending, and the last failed with: {exc}") from exc
                raise
            pause = min(float(policy["interval_max"]),
                        float(policy["interval_start"]) + attempt * float(policy["interval_step"]))
            logger.warning("publishing %s failed (%s); retry %d in %.1fs", _what(items), exc, attempt + 1, pause)
            time.sleep(pause)
            attempt += 1


def _what(items: list[Item] | Batch) -> str:
    if len(items) == 1:
        return f"task {next(iter(items))[4]}"
    return f"{len(items)} tasks"
