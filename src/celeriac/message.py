"""The wire envelope: what one task message carries, and how it becomes bytes and back.

A message is encoded once, at the caller, and the broker stores those bytes untouched. The
worker decodes them with a strict schema, so a malformed message is a clear ``DecodeError``
naming the field, never an ``AttributeError`` deep inside the worker.

Signed messages (``task_message_signing_key``) wrap the body with a signing time and an HMAC
(:mod:`celeriac.signing`); a worker refuses them once older than ``task_message_signing_max_age``.
"""

from __future__ import annotations

import base64
import pickle
import time
from typing import Any

import msgspec

from . import signing
from .argtypes import MARKER, tag, untag
from .exceptions import DecodeError, EncodeError

VERSION = 1
# What a task message's signature is for: signed control commands or stored values can never
# pass for a task message (signing.py).
PURPOSE = b"task"


class ChordRef(msgspec.Struct, array_like=True):
    """The chord a header task counts into: the body's join message waits under ``id`` in the
    broker and goes to ``queue`` at ``priority`` once every header task is done."""

    id: str
    queue: str
    priority: int = 0


class Flow(msgspec.Struct, omit_defaults=True, kw_only=True):
    """What follows a task (canvas): Celery's callbacks, errbacks, chain and chord, as signature
    dicts. Absent from plain tasks, so they encode and decode exactly as before."""

    link: list[dict[str, Any]] = msgspec.field(default_factory=list)
    link_error: list[dict[str, Any]] = msgspec.field(default_factory=list)
    chain: list[dict[str, Any]] = msgspec.field(default_factory=list)  # the steps still to run, next first
    chord: ChordRef | None = None


class Envelope(msgspec.Struct, omit_defaults=True, kw_only=True):
    """One task message. Times are seconds since the epoch (UTC)."""

    id: str
    task: str
    args: list[Any] = msgspec.field(default_factory=list)
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    v: int = VERSION
    queue: str = "celery"
    priority: int = 0
    eta: float | None = None
    expires: float | None = None
    retries: int = 0
    root_id: str | None = None
    parent_id: str | None = None
    group_id: str | None = None
    headers: dict[str, Any] = msgspec.field(default_factory=dict)
    ignore_result: bool = False
    time_limit: float | None = None
    soft_time_limit: float | None = None
    origin: str | None = None
    sent: float | None = None
    # A start time the global rate limiter already granted; the worker runs it without asking again.
    slot: float | None = None
    # Only with the pickle serializer: base64 of pickle.dumps((args, kwargs)).
    pickled: str | None = None
    flow: Flow | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)
_value_decoder = msgspec.json.Decoder()


def _unencodable_argument(args: Any, kwargs: Any) -> str:
    """Name the first argument that JSON cannot carry, for an error message the caller can act on."""
    for index, value in enumerate(args or ()):
        try:
            _encoder.encode(value)
        except (TypeError, msgspec.EncodeError, OverflowError) as exc:
            return f"args[{index}] ({type(value).__name__}): {exc}"
    for key, value in (kwargs or {}).items():
        try:
            _encoder.encode(value)
        except (TypeError, msgspec.EncodeError, OverflowError) as exc:
            return f"kwargs[{key!r}] ({type(value).__name__}): {exc}"
        if not isinstance(key, str):
            return f"kwargs key {key!r} is not a string"
    return "an argument"


def encode(envelope: Envelope, *, serializer: str = "json", signing_key: bytes | None = None) -> bytes:
    """Encode ``envelope`` to the bytes the broker stores. Raises EncodeError naming the argument."""
    if serializer == "pickle":
        envelope.pickled = base64.b64encode(pickle.dumps((envelope.args, envelope.kwargs))).decode()
        envelope.args, envelope.kwargs = [], {}
    elif serializer != "json":
        raise EncodeError(f"serializer {serializer!r} is not supported (use 'json' or 'pickle')")
    if not isinstance(envelope.args, list):
        envelope.args = list(envelope.args)
    if serializer == "json":
        envelope.args, envelope.kwargs = tag(envelope.args), tag(envelope.kwargs)
    try:
        body = _encoder.encode(envelope)
    except (TypeError, msgspec.EncodeError, OverflowError):
        raise _argument_error(envelope.task, envelope.args, envelope.kwargs) from None
    return sign(body, signing_key) if signing_key else body


def sign(body: bytes, signing_key: bytes) -> bytes:
    return signing.sign(body, signing_key, PURPOSE)


def _argument_error(task: str, args: Any, kwargs: Any) -> EncodeError:
    return EncodeError(f"task {task!r}: cannot encode {_unencodable_argument(args, kwargs)}")


# Stands in for the id, args and kwargs of a template envelope; control characters keep it
# from ever being a real value.
_MARK = "\x00celeriac-template\x00"


class TemplateEncoder:
    """Encodes many JSON envelopes that differ only in id, args and kwargs (``send_many``).

    The template is encoded once with marks in those three places and cut there; each message
    is then its id and its two encoded arguments joined between the cut pieces: the same bytes
    ``encode`` makes (field order is fixed by the Envelope class), at a fraction of the cost
    and with no Envelope object per message."""

    def __init__(self, template: Envelope, signing_key: bytes | None = None) -> None:
        marked = msgspec.structs.replace(template, id=_MARK, args=[_MARK], kwargs={_MARK: _MARK})
        encoded_mark = _encoder.encode(_MARK)
        data = _encoder.encode(marked)
        head, rest = data.split(encoded_mark, 1)  # "id" is the first field
        middle, rest = rest.split(b"[" + encoded_mark + b"]", 1)
        between, tail = rest.split(b"{" + encoded_mark + b":" + encoded_mark + b"}", 1)
        self._pieces = (head + b'"', b'"' + middle, between, tail)
        self._task = template.task
        self._signing_key = signing_key

    def encode(self, task_id: str, args: Any, kwargs: Any) -> bytes:
        head, middle, between, tail = self._pieces
        try:
            body = b"".join((head, task_id.encode(), middle, _encoder.encode(tag(args or [])), between,
                             _encoder.encode(tag(kwargs or {})), tail))
        except (TypeError, msgspec.EncodeError, OverflowError):
            raise _argument_error(self._task, args, kwargs) from None
        return sign(body, self._signing_key) if self._signing_key else body


def decode(data: bytes, *, accept: frozenset[str] = frozenset({"json"}), signing_key: bytes | None = None,
           max_age: float | None = None, now: float | None = None, arguments: bool = True) -> Envelope:
    """Decode broker bytes into an Envelope, checking signature, age and accepted content.

    ``max_age`` (``task_message_signing_max_age``) refuses a signed message signed longer ago
    than that (at ``now``). With ``arguments`` False, pickled arguments are left pickled: for
    callers that only need the message's name, never its arguments."""
    signed_at, signed = 0.0, data.startswith(signing.PREFIXES)  # signing.is_signed, without its frame
    if signed or signing_key is not None:
        signed_at, data = signing.verify(data, signing_key, PURPOSE)
    try:
        envelope = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"malformed message: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DecodeError(f"message is not valid JSON: {exc}") from None
    if signed and max_age is not None:
        # A message meant to wait (countdown/eta, or a start slot the rate limiter granted)
        # legitimately sits in the broker until then, so its age counts from that moment;
        # a retry or a deferral is encoded again, and so signed again, when it is sent.
        # What a replay can still do is bounded by the signer's own eta plus max_age.
        signing.check_age(signed_at, max_age, time.time() if now is None else now,
                          not_before=max(envelope.eta or 0.0, envelope.slot or 0.0))
    # find(), not ``in``: bytes.__contains__ first tries the operand as an integer, and the
    # TypeError it formats and drops costs more than the search (about 4,000 instructions).
    if arguments and data.find(MARKER) != -1:
        envelope.args, envelope.kwargs = untag(envelope.args), untag(envelope.kwargs)
    if envelope.pickled is not None:
        if "pickle" not in accept:
            raise DecodeError("message arguments are pickled but accept_content does not allow 'pickle'")
        if arguments:
            try:
                envelope.args, envelope.kwargs = pickle.loads(base64.b64decode(envelope.pickled))
            except Exception as exc:
                raise DecodeError(f"cannot unpickle arguments: {exc!r}") from None
            envelope.pickled = None
    if not 0 <= envelope.priority <= 9:
        envelope.priority = min(max(envelope.priority, 0), 9)
    return envelope


def peek_id(data: bytes) -> str | None:
    """Best-effort task id from bytes that may not decode, to attach a reason to a result."""
    try:
        raw = _value_decoder.decode(signing.body_of(data))
        task_id = raw.get("id") if isinstance(raw, dict) else None
        return task_id if isinstance(task_id, str) else None
    except Exception:
        return None


def dumps(value: Any) -> bytes:
    """Encode a result or meta value to JSON; EncodeError names the type that cannot be encoded."""
    try:
        return _encoder.encode(tag(value))
    except (TypeError, msgspec.EncodeError, OverflowError) as exc:
        raise EncodeError(f"cannot encode {type(value).__name__} as JSON: {exc}") from None


def loads(data: bytes | str) -> Any:
    value = _value_decoder.decode(data)
    marked = data.find(MARKER) != -1 if isinstance(data, bytes) else MARKER.decode() in data  # see decode()
    return untag(value) if marked else value
