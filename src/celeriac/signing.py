"""HMAC signatures with a signing time, for bytes that cross the broker when
``task_message_signing_key`` is set: task messages, remote-control commands and their replies,
revocations, and beat's run-time entries and pauses.

    b"s2:" + signed_at (milliseconds since the epoch) + b":" + hex HMAC-SHA256 + b":" + body

The MAC covers a *purpose* (what the bytes are, and for stored values under which name), the
signing time and the body. So signed bytes cannot be passed off as another kind of thing (a task
message as a control command) or moved to another name (a beat entry under a different name),
and the signing time cannot be changed to make old bytes look fresh. The signature wraps the
body instead of living inside it, so a task message's body is still encoded once.

``s1:`` is the format before the signing time existed. It is refused: without a time, a captured
message could be replayed forever.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from .exceptions import SignatureError

PREFIX = b"s2:"
LEGACY_PREFIX = b"s1:"


def _mac(key: bytes, purpose: bytes, stamp: bytes, body: bytes) -> bytes:
    mac = hmac.new(key, purpose, hashlib.sha256)
    mac.update(b"\x00" + stamp + b":")
    mac.update(body)
    return mac.hexdigest().encode()


def sign(body: bytes, key: bytes, purpose: bytes, signed_at: float | None = None) -> bytes:
    """``body`` wrapped with its signature for ``purpose``, signed now (or at ``signed_at``)."""
    stamp = str(int((time.time() if signed_at is None else signed_at) * 1000)).encode()
    return PREFIX + stamp + b":" + _mac(key, purpose, stamp, body) + b":" + body


PREFIXES = (PREFIX, LEGACY_PREFIX)


def is_signed(data: bytes) -> bool:
    return data.startswith(PREFIXES)


def body_of(data: bytes) -> bytes:
    """The body of signed bytes without checking anything (to name a message that is refused)."""
    if data.startswith(PREFIX):
        return data[len(PREFIX):].split(b":", 2)[-1]
    if data.startswith(LEGACY_PREFIX):
        return data[len(LEGACY_PREFIX):].partition(b":")[2]
    return data


def verify(data: bytes, key: bytes | None, purpose: bytes, what: str = "message") -> tuple[float, bytes]:
    """``(signed_at, body)`` of signed bytes; SignatureError saying what is wrong otherwise.

    With ``key`` None, signed bytes are refused (nothing could check them) and unsigned bytes
    are returned as they are, with a signing time of 0."""
    if data.startswith(LEGACY_PREFIX):
        raise SignatureError(f"{what} is signed in the old format without a signing time (s1), which "
                             "could be replayed forever; send it again from an up-to-date celeriac")
    if not data.startswith(PREFIX):
        if key is not None:
            raise SignatureError(f"{what} is not signed and task_message_signing_key requires signatures")
        return 0.0, data
    if key is None:
        raise SignatureError(f"{what} is signed but this process has no task_message_signing_key")
    parts = data[len(PREFIX):].split(b":", 2)
    if len(parts) != 3 or not parts[0].isdigit():
        raise SignatureError(f"signed {what} is truncated or malformed")
    stamp, digest, body = parts
    if not hmac.compare_digest(digest, _mac(key, purpose, stamp, body)):
        raise SignatureError(f"{what} signature does not match (wrong key or tampered {what})")
    return int(stamp) / 1000.0, body


def check_age(signed_at: float, max_age: float | None, now: float, not_before: float = 0.0,
              what: str = "message", limit: str = "task_message_signing_max_age") -> None:
    """Refuse bytes signed more than ``max_age`` seconds before ``now``, counting from
    ``not_before`` instead when that is later (a message meant to wait until then)."""
    if max_age is None:
        return
    age = now - max(signed_at, not_before)
    if age > max_age:
        error = SignatureError(f"signed {what} is {age:.0f}s old, past {limit} ({max_age:g}s): "
                               "refused as a possible replay")
        error.authentic = True
        raise error
