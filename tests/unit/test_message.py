"""The wire envelope: encoded once at the caller, strict at the worker, optionally signed."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

from celeriac import message, signing
from celeriac.exceptions import DecodeError, EncodeError
from celeriac.message import Envelope


def test_roundtrip_keeps_every_field():
    env = Envelope(id="1", task="t", args=[1, "x", [2]], kwargs={"k": {"n": None}}, queue="q", priority=7,
                   eta=1.5, expires=2.5, retries=2, headers={"h": 1}, ignore_result=True, time_limit=3.0)
    back = message.decode(message.encode(env))
    assert back == env


def test_common_python_types_round_trip():
    """As Celery's JSON does (tests/unit/test_argument_types.py has the rest)."""
    args = [datetime.datetime(2025, 1, 1), uuid.UUID(int=1), decimal.Decimal("1.5")]
    back = message.decode(message.encode(Envelope(id="1", task="t", args=list(args))))
    assert back.args == args


def test_unencodable_argument_is_named():
    with pytest.raises(EncodeError, match=r"task 't': cannot encode args\[1\] \(object\)"):
        message.encode(Envelope(id="1", task="t", args=[1, object()]))
    with pytest.raises(EncodeError, match=r"kwargs\['cb'\] \(function\)"):
        message.encode(Envelope(id="1", task="t", kwargs={"cb": lambda: 1}))


@pytest.mark.parametrize(("raw", "why"), [
    (b"\xff\x00", "not valid JSON"),
    (b"[]", "Expected `object`"),
    (b'{"task": "t"}', "missing required field `id`"),
    (b'{"id": "1", "task": "t", "args": "x"}', "Expected `array`"),
    (b'{"id": 1, "task": "t"}', "Expected `str`"),
])
def test_malformed_messages_are_decode_errors_naming_the_field(raw, why):
    with pytest.raises(DecodeError, match=why):
        message.decode(raw)


def test_peek_id_survives_bad_schema():
    assert message.peek_id(b'{"id": "abc", "task": 5}') == "abc"
    assert message.peek_id(b"garbage") is None


def test_signed_messages_are_checked():
    env = Envelope(id="1", task="t", args=[1])
    body = message.encode(env, signing_key=b"secret")
    assert message.decode(body, signing_key=b"secret").args == [1]
    with pytest.raises(DecodeError, match="signature does not match"):
        message.decode(body, signing_key=b"other")
    tampered = body.replace(b"[1]", b"[2]")
    with pytest.raises(DecodeError, match="signature does not match"):
        message.decode(tampered, signing_key=b"secret")
    with pytest.raises(DecodeError, match="requires signatures"):
        message.decode(message.encode(env), signing_key=b"secret")


def test_pickle_only_when_accepted():
    env = Envelope(id="1", task="t", args=[{1, 2}])
    body = message.encode(env, serializer="pickle")
    with pytest.raises(DecodeError, match="accept_content does not allow 'pickle'"):
        message.decode(body)
    assert message.decode(body, accept=frozenset({"json", "pickle"})).args == [{1, 2}]


def test_priority_is_clamped():
    assert message.decode(b'{"id": "1", "task": "t", "priority": 42}').priority == 9


def test_task_ids_are_valid_distinct_uuid4():
    import uuid

    from celeriac.publish import new_task_id, new_task_ids

    ids = [*new_task_ids(2000), *(new_task_id() for _ in range(2000))]
    assert len(set(ids)) == 4000
    for task_id in ids:
        parsed = uuid.UUID(task_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == task_id


@pytest.mark.parametrize("signing_key", [None, b"secret"])
def test_template_encoder_makes_the_bytes_encode_makes(signing_key):
    import msgspec

    template = Envelope(id="template", task="t", queue="q", priority=7, eta=1.5, expires=2.5,
                        headers={"h": 1}, ignore_result=True, origin="1@h", sent=3.25)
    encoder = message.TemplateEncoder(template, signing_key)
    for task_id, args, kwargs in [("a-1", [1, "x", [2]], {"k": {"n": None}}), ("a-2", (), {}),
                                  ("a-3", ("\x00celeriac-template\x00",), {"\x00": "]}"})]:
        one = msgspec.structs.replace(template, id=task_id, args=list(args), kwargs=kwargs)
        made = encoder.encode(task_id, args, kwargs)
        assert message.decode(made, signing_key=signing_key) == one
        if args:  # an empty args/kwargs is written out by the template, left out by encode()
            # The signing time differs from one call to the next; the bodies may not.
            assert signing.body_of(made) == signing.body_of(message.encode(one, signing_key=signing_key))
            if signing_key:
                assert made.startswith(signing.PREFIX)


def test_template_encoder_names_the_bad_argument():
    encoder = message.TemplateEncoder(Envelope(id="x", task="t"))
    with pytest.raises(EncodeError, match=r"task 't': cannot encode kwargs\['when'\] \(object\)"):
        encoder.encode("id", [1], {"when": object()})
