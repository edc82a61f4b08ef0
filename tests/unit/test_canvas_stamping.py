"""Signature.stamp without a worker: what each primitive stamps, how stamps merge, and that they
reach the message's headers and the task's request (Celery's names: ``stamped_headers``, ``stamps``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import Celery, chain, chord, group, message, signature
from celeriac.canvas import StampingVisitor
from celeriac.control import stamp_headers_of, stamps_revoked


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("stamps", broker="memory://stamps-unit", backend="memory://")
    yield app
    app.close()


@pytest.fixture
def show(app: Celery) -> Any:
    @app.task(bind=True)
    def show(self: Any, x: Any = None) -> dict[str, Any]:
        return {"names": sorted(self.request.stamped_headers), "stamps": self.request.stamps}

    return show


def test_stamp_sets_the_options_and_replaces_or_appends(show: Any) -> None:
    sig = show.s(1).stamp(batch="b1")
    assert sig.options == {"batch": "b1", "stamped_headers": ["batch"]}
    sig.stamp(batch="b2")
    assert sig.options["batch"] == "b2"
    sig.stamp(append_stamps=True, batch="b3", job="j")
    assert sig.options["batch"] == ["b3", "b2"] and sig.options["job"] == "j"
    assert sig.options["stamped_headers"] == ["batch", "job"]
    again = signature(sig.as_dict())  # the stamps travel inside the signature's dict
    assert again.options["batch"] == ["b3", "b2"]


def test_primitives_stamp_every_member_and_links(app: Celery, show: Any) -> None:
    callback, errback = show.si("cb"), show.si("eb")
    first = show.s(1)
    first.link(callback)
    first.link_error(errback)
    flow = chain(first, group(show.s(2), show.s(3)), show.s(4))
    flow.stamp(run="r1")
    first, inner, last = flow.tasks
    assert first.options["run"] == "r1" and last.options["run"] == "r1"
    assert [m.options["run"] for m in inner.tasks] == ["r1", "r1"]
    assert first.options["link"][0].options["run"] == "r1"
    assert first.options["link_error"][0].options["run"] == "r1"
    header = chord([show.s(5), show.s(6)], show.s())
    header.stamp(run="r2")
    assert [m.options["run"] for m in header.tasks] == ["r2", "r2"]
    assert header.body is not None and "run" not in header.body.options  # as Celery: a body needs a visitor


def test_visitor_decides_per_signature_and_sees_each_primitive(show: Any) -> None:
    seen: list[str] = []

    class Labels(StampingVisitor):
        def on_signature(self, sig: Any, **headers: Any) -> dict[str, Any]:
            return {"label": f"task-{sig.args[0] if sig.args else 'body'}", "extra": 1, "stamped_headers": ["label"]}

        def on_group_start(self, group: Any, **headers: Any) -> dict[str, Any]:
            seen.append("group")
            return {"in_group": True}

        def on_chord_body(self, sig: Any, **headers: Any) -> dict[str, Any]:
            seen.append("body")
            return {"body": True}

    body = show.s()
    c = chord([show.s(1), show.s(2)], body)
    c.stamp(visitor=Labels())
    assert seen == ["group", "body"]
    one, two = c.tasks
    assert one.options["label"] == "task-1" and two.options["label"] == "task-2"
    assert one.options["in_group"] is True and "extra" not in one.options  # only listed keys are stamps
    assert c.body is not None and c.body.options["body"] is True and c.body.options["label"] == "task-body"
    with pytest.raises(TypeError, match="on_signature"):
        StampingVisitor()  # type: ignore[abstract]


def test_stamps_go_into_the_message_headers(app: Celery, show: Any) -> None:
    result = show.s(1).stamp(batch="b1", job=["j1", "j2"]).apply_async(queue="stamps")
    [delivery] = app.broker.fetch(["stamps"], "c", 1, 1.0)
    envelope = message.decode(delivery.body)
    assert envelope.id == result.id
    assert envelope.headers["stamped_headers"] == ["batch", "job"]
    assert envelope.headers["stamps"] == {"batch": "b1", "job": ["j1", "j2"]}


def test_the_task_sees_its_stamps_eagerly(app: Celery, show: Any) -> None:
    out = show.s(1).stamp(batch="b1").apply().get()
    assert out == {"names": ["batch"], "stamps": {"batch": "b1"}}
    assert show.apply((1,)).get() == {"names": [], "stamps": {}}


def test_revocation_matching_by_stamp() -> None:
    revoked = stamp_headers_of({"batch": "b1", "job": ["j1", "j2"]})
    assert revoked == {"batch": ["b1"], "job": ["j1", "j2"]}
    assert stamps_revoked({"batch": "b1"}, revoked) == {"batch": "b1"}
    assert stamps_revoked({"job": ["x", "j2"]}, revoked) == {"job": "j2"}
    assert stamps_revoked({"batch": "b2", "other": "b1"}, revoked) is None
    assert stamp_headers_of(["batch=b1", "batch=b2"]) == {"batch": ["b1", "b2"]}
    with pytest.raises(ValueError, match="not 'header=value'"):
        stamp_headers_of(["batch"])
    with pytest.raises(ValueError, match="non-empty dict"):
        stamp_headers_of({})


def test_stamp_revocations_are_read_only_when_signed_for_their_field() -> None:
    """With a signing key, a stamp revocation written by anyone without it revokes nothing, nor
    does a signed one moved to another (header, value)."""
    from celeriac.control import live_stamp_revocations, seal, stamp_field, stamp_revocation_purpose

    key, now = b"k" * 32, 1000.0
    record = message.dumps({"time": now, "until": now + 60})
    field, other = stamp_field("batch", "b1"), stamp_field("batch", "b2")
    signed = seal(record, key, stamp_revocation_purpose(field))
    assert live_stamp_revocations({field: signed}, now, key) == {"batch": ["b1"]}
    assert live_stamp_revocations({field: record}, now, key) == {}  # unsigned
    assert live_stamp_revocations({other: signed}, now, key) == {}  # signed for b1, not b2
    assert live_stamp_revocations({field: signed}, now + 61, key) == {}  # past worker_revoke_expires
    assert live_stamp_revocations({field: record}, now, None) == {"batch": ["b1"]}  # no key: as written
