"""Arguments and results keep their types through the broker, as Celery's JSON keeps them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from celeriac import Celery, message
from celeriac.exceptions import EncodeError
from celeriac.testing import start_worker

VALUES = [
    datetime(2026, 12, 7, 11, 30, 5, 123456, tzinfo=UTC),
    datetime(2026, 12, 7, 11, 30),  # naive stays naive
    date(2026, 12, 24),
    time(8, 15),
    Decimal("19.99"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    b"raw \x00 bytes",
    b"\xff\xfe not utf-8",
]


def test_special_types_round_trip_through_a_message():
    envelope = message.Envelope(id="1", task="t", args=[VALUES, {"nested": VALUES[0]}],
                                kwargs={"when": VALUES[2], "price": VALUES[4]})
    back = message.decode(message.encode(envelope))
    assert back.args == [VALUES, {"nested": VALUES[0]}]
    assert [type(v) for v in back.args[0]] == [type(v) for v in VALUES]
    assert back.kwargs == {"when": VALUES[2], "price": VALUES[4]}


def test_the_wire_form_is_celerys():
    body = message.encode(message.Envelope(id="1", task="t", args=[Decimal("1.5")]))
    assert b'{"__type__":"decimal","__value__":"1.5"}' in body


def test_plain_arguments_are_not_copied():
    args = [1, "a", [2, {"b": 3}]]
    from celeriac.argtypes import tag

    assert tag(args) is args


def test_results_keep_their_types():
    assert message.loads(message.dumps({"at": VALUES[0], "id": VALUES[5]})) == {"at": VALUES[0], "id": VALUES[5]}


def test_other_unencodable_arguments_are_still_refused_by_name():
    with pytest.raises(EncodeError, match=r"args\[0\] \(object\)"):
        message.encode(message.Envelope(id="1", task="t", args=[object()]))


def test_a_worker_receives_the_types_the_caller_sent():
    app = Celery("types", broker="memory://", set_as_current=False)

    @app.task
    def kinds(*args):
        return [type(a).__name__ for a in args], list(args)

    with start_worker(app):
        names, values = kinds.delay(*VALUES).get(timeout=10)
    assert names == [type(v).__name__ for v in VALUES]
    assert values == VALUES
