"""Signed bytes carry their signing time: a captured message cannot be replayed forever, and a
signature made for one thing (a control command, a beat entry under one name) fits nothing else."""

from __future__ import annotations

import time

import pytest

from celeriac import message, signing
from celeriac.exceptions import DecodeError, SignatureError
from celeriac.message import Envelope

KEY = b"s3cret"
DAY = 86400.0


def signed(env: Envelope, at: float) -> bytes:
    return signing.sign(message.encode(env), KEY, message.PURPOSE, signed_at=at)


def test_a_fresh_signed_message_decodes():
    env = Envelope(id="1", task="t", args=[1])
    assert message.decode(message.encode(env, signing_key=KEY), signing_key=KEY, max_age=DAY) == env


def test_a_replayed_old_message_is_refused():
    """Signed two days ago, checked with a one-day maximum age: a replay, refused."""
    body = signed(Envelope(id="1", task="t"), time.time() - 2 * DAY)
    with pytest.raises(SignatureError, match=r"past task_message_signing_max_age \(86400s\).*replay"):
        message.decode(body, signing_key=KEY, max_age=DAY)
    assert message.decode(body, signing_key=KEY, max_age=None).id == "1"  # None: no limit


def test_age_counts_from_the_eta_of_a_message_meant_to_wait():
    """A countdown message waits in the broker until its eta on purpose; its age starts there."""
    now = time.time()
    waited = signed(Envelope(id="1", task="t", eta=now - 60), now - 2 * DAY)
    assert message.decode(waited, signing_key=KEY, max_age=3600, now=now).id == "1"
    stale = signed(Envelope(id="2", task="t", eta=now - 2 * 3600), now - 2 * DAY)
    with pytest.raises(SignatureError, match="replay"):
        message.decode(stale, signing_key=KEY, max_age=3600, now=now)
    deferred = signed(Envelope(id="3", task="t", slot=now - 5), now - 2 * DAY)
    assert message.decode(deferred, signing_key=KEY, max_age=3600, now=now).id == "3"


def test_a_changed_signing_time_breaks_the_signature():
    body = signed(Envelope(id="1", task="t"), time.time() - 2 * DAY)
    stamp = body.split(b":")[1]
    fresh = body.replace(stamp, str(int(time.time() * 1000)).encode(), 1)
    with pytest.raises(SignatureError, match="signature does not match"):
        message.decode(fresh, signing_key=KEY, max_age=DAY)


def test_the_old_format_without_a_time_is_refused_clearly():
    import hashlib
    import hmac

    body = message.encode(Envelope(id="1", task="t"))
    old = b"s1:" + hmac.new(KEY, body, hashlib.sha256).hexdigest().encode() + b":" + body
    with pytest.raises(SignatureError, match=r"old format without a signing time \(s1\)"):
        message.decode(old, signing_key=KEY)
    with pytest.raises(DecodeError, match="old format"):
        message.decode(old)
    assert message.peek_id(old) == "1"


def test_a_signature_fits_only_its_purpose():
    body = signing.sign(message.encode(Envelope(id="1", task="t")), KEY, b"control")
    with pytest.raises(SignatureError, match="signature does not match"):
        message.decode(body, signing_key=KEY)
    entry = signing.sign(b"{}", KEY, b"beat-entry:a")
    with pytest.raises(SignatureError):
        signing.verify(entry, KEY, b"beat-entry:b")
    assert signing.verify(entry, KEY, b"beat-entry:a")[1] == b"{}"


@pytest.mark.parametrize("data", [b"s2:", b"s2:123", b"s2:abc:def:{}", b"s2:1:2"])
def test_malformed_signed_bytes_are_refused(data):
    with pytest.raises(SignatureError):
        message.decode(data, signing_key=KEY)


def test_without_a_key_unsigned_bytes_pass_and_signed_ones_are_refused():
    assert signing.verify(b"{}", None, b"control") == (0.0, b"{}")
    with pytest.raises(SignatureError, match="no task_message_signing_key"):
        signing.verify(signing.sign(b"{}", KEY, b"control"), None, b"control")


def test_pickled_arguments_stay_pickled_when_only_the_name_is_wanted():
    body = message.encode(Envelope(id="1", task="t", args=[{1}]), serializer="pickle")
    env = message.decode(body, accept=frozenset({"json", "pickle"}), arguments=False)
    assert env.task == "t" and env.args == [] and env.pickled
    with pytest.raises(DecodeError, match="does not allow 'pickle'"):
        message.decode(body, arguments=False)


def test_only_an_age_refusal_vouches_for_the_message():
    """A stale message came from a key holder (its id may get a FAILURE); a forged one did not."""
    stale = signed(Envelope(id="1", task="t"), time.time() - 2 * DAY)
    with pytest.raises(SignatureError) as info:
        message.decode(stale, signing_key=KEY, max_age=DAY)
    assert info.value.authentic
    with pytest.raises(SignatureError) as info:
        message.decode(stale, signing_key=b"other", max_age=DAY)
    assert not info.value.authentic
