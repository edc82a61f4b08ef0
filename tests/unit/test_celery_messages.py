"""Celery's task messages, made by Celery's and kombu's own code, read as celeriac envelopes
(migration/convert.py): every field the cut-over promises to keep, and a clear refusal for
what it cannot carry."""

from __future__ import annotations

import base64
import uuid
import zlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import celery
import msgspec
import pytest
from kombu import serialization

from celeriac.migration.convert import Refused, convert

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def celery_app() -> Any:
    app = celery.Celery("shop", broker="memory://", set_as_current=False)
    yield app
    app.close()


def payload(celery_app: Any, *, args: Any = (), kwargs: Any = None, serializer: str = "json",
            priority: int | None = None, compression: str | None = None, headers: Any = None,
            **options: Any) -> dict[str, Any]:
    """A kombu payload as kombu's Redis transport stores it: Celery's protocol 2 message,
    serialized by kombu (msgpack by msgspec, as kombu's msgpack extra is not installed), its
    body base64-encoded; ``headers`` join Celery's as ``apply_async(headers=...)`` has them."""
    message = celery_app.amqp.as_task_v2(options.pop("task_id", str(uuid.uuid4())), "shop.record",
                                         args=args, kwargs=kwargs or {}, **options)
    if serializer == "msgpack":
        content_type, encoding, raw = "application/x-msgpack", "binary", msgspec.msgpack.encode(message.body)
    else:
        content_type, encoding, data = serialization.dumps(message.body, serializer=serializer)
        raw = data.encode(encoding) if isinstance(data, str) else data
    headers = {**message.headers, **(headers or {})}
    if compression:
        raw = zlib.compress(raw)
        headers["compression"] = compression
    return {"body": base64.b64encode(raw).decode(), "content-encoding": encoding, "content-type": content_type,
            "headers": headers, "properties": {"priority": priority, "body_encoding": "base64",
                                               "delivery_info": {"exchange": "", "routing_key": "celery"}}}


def test_protocol_2_keeps_id_arguments_types_and_request_fields(celery_app: Any) -> None:
    eta = datetime.fromtimestamp(NOW + 90, UTC)
    expires = datetime.fromtimestamp(NOW + 600, UTC)
    special = [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), date(2026, 1, 2), Decimal("1.10"), uuid.UUID(int=7)]
    got = convert(payload(celery_app, task_id="t-1", args=(1, "a", special), kwargs={"k": {"n": [None]}},
                          eta=eta, expires=expires, retries=2, root_id="r", parent_id="p", group_id="g",
                          time_limit=30, soft_time_limit=20, priority=7, headers={"trace": "x1"}),
                  "celery", now=NOW)
    env = got.envelope
    assert (env.id, env.task, env.queue, env.priority) == ("t-1", "shop.record", "celery", 7)
    assert env.args == [1, "a", special] and env.kwargs == {"k": {"n": [None]}}
    assert (env.retries, env.root_id, env.parent_id, env.group_id) == (2, "r", "p", "g")
    assert (env.time_limit, env.soft_time_limit) == (30.0, 20.0)
    assert env.headers == {"trace": "x1"}  # the caller's own header travels; Celery's do not
    assert env.eta == pytest.approx(NOW + 90) and got.delay == pytest.approx(90)
    assert env.expires == pytest.approx(NOW + 600) and not got.expired


def test_a_past_eta_is_ready_now_and_a_past_expiry_is_reported(celery_app: Any) -> None:
    got = convert(payload(celery_app, eta=datetime.fromtimestamp(NOW - 5, UTC),
                          expires=datetime.fromtimestamp(NOW - 1, UTC)), "q", now=NOW)
    assert got.delay == 0 and got.envelope.eta is None and got.expired


def test_naive_times_are_read_as_utc(celery_app: Any) -> None:
    message = payload(celery_app)
    message["headers"]["eta"] = (datetime.fromtimestamp(NOW + 60, UTC).replace(tzinfo=None)).isoformat()
    assert convert(message, "q", now=NOW).delay == pytest.approx(60)


def test_no_priority_takes_the_default_and_out_of_range_is_clamped(celery_app: Any) -> None:
    assert convert(payload(celery_app), "q", default_priority=4, now=NOW).envelope.priority == 4
    assert convert(payload(celery_app, priority=255), "q", now=NOW).envelope.priority == 9


def test_pickle_is_refused_unless_accepted(celery_app: Any) -> None:
    message = payload(celery_app, args=(b"\xff", timedelta(seconds=3)), serializer="pickle")
    with pytest.raises(Refused, match=r"pickled.*--accept-pickle"):
        convert(message, "q", now=NOW)
    got = convert(message, "q", accept_pickle=True, now=NOW)
    assert got.pickled and got.envelope.args == [b"\xff", timedelta(seconds=3)]


def test_msgpack_and_compressed_bodies_are_read(celery_app: Any) -> None:
    assert convert(payload(celery_app, args=(1, "x"), serializer="msgpack"), "q", now=NOW).envelope.args == [1, "x"]
    assert convert(payload(celery_app, args=(2,), compression="application/x-gzip"), "q",
                   now=NOW).envelope.args == [2]


def test_canvas_is_refused_rather_than_dropped(celery_app: Any) -> None:
    linked = payload(celery_app, callbacks=[celery.signature("shop.after")])
    with pytest.raises(Refused, match="canvas"):
        convert(linked, "q", now=NOW)


def test_protocol_1_bodies_are_read() -> None:
    body = {"task": "shop.record", "id": "old-1", "args": [1], "kwargs": {"a": 2}, "retries": 1,
            "eta": None, "expires": None, "utc": True, "callbacks": None, "errbacks": None, "chord": None}
    content_type, encoding, data = serialization.dumps(body, serializer="json")
    message = {"body": base64.b64encode(data.encode()).decode(), "content-type": content_type,
               "content-encoding": encoding, "headers": {}, "properties": {"body_encoding": "base64"}}
    env = convert(message, "q", now=NOW).envelope
    assert (env.id, env.task, env.args, env.kwargs, env.retries) == ("old-1", "shop.record", [1], {"a": 2}, 1)


@pytest.mark.parametrize(("change", "why"), [
    (lambda m: m.update(body="%%%"), "does not decode|base64"),
    (lambda m: m.update({"content-type": "application/x-yaml"}), "content type 'application/x-yaml'"),
    (lambda m: m["headers"].update(eta="next tuesday"), "eta 'next tuesday' is not an ISO 8601 time"),
    (lambda m: m["headers"].update(compression="zstd"), "compression 'zstd'"),
    (lambda m: (m["headers"].pop("task"), m.update(body=base64.b64encode(b"[1]").decode())), "not a Celery task"),
])
def test_what_cannot_be_read_is_refused_with_the_reason(celery_app: Any, change: Any, why: str) -> None:
    message = payload(celery_app)
    change(message)
    with pytest.raises(Refused, match=why):
        convert(message, "q", now=NOW)
