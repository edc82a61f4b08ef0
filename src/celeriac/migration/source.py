"""What a Celery 5 broker on Redis holds, in kombu's Redis transport layout.

- A queue ``q`` is a list per priority step: ``q`` itself (priority 0), then ``q\\x06\\x163``,
  ``q\\x06\\x166``, ``q\\x06\\x169`` (kombu's default steps). Producers ``LPUSH``, consumers
  ``BRPOP``: the oldest message is at the tail.
- A message a consumer took and has not acked (every prefetched or running task, an ETA or
  countdown task a worker holds in memory, and what dead workers left) is in the hash
  ``unacked`` (delivery tag -> ``[payload, exchange, routing key]``) and in the sorted set
  ``unacked_index`` (delivery tag -> when it was delivered), until a worker acks it or restores
  it to its list after ``visibility_timeout``.
- ``_kombu.binding.<exchange>`` sets name the queues: members ``routing key\\x06\\x16pattern\\x06\\x16queue``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

SEP = "\x06\x16"
BINDINGS = "_kombu.binding."
UNACKED, UNACKED_INDEX = "unacked", "unacked_index"
# Exchanges and queues of remote control and events, not of tasks.
_CONTROL = ("pidbox", "celeryev")
# kombu's consumers wait in BRPOP and subscribe (remote control, events); celeriac's own
# processes wait in BLPOP/BLMOVE/XREADGROUP and never subscribe, so they are not mistaken for Celery.
_CONSUMING = "brpop"


@dataclass(frozen=True, slots=True)
class Found:
    """One Celery message: where it is (a list and its element, or an unacked delivery tag)."""

    queue: str
    payload: dict[str, Any]
    key: str  # the list, or the unacked hash
    member: bytes | str  # the list element as stored, or the delivery tag


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class CelerySource:
    """A Celery Redis broker, read and changed only through the commands kombu itself uses."""

    def __init__(self, url: str) -> None:
        self.client: Any = redis.Redis.from_url(url, socket_timeout=30)
        #: The URL without its password, for messages.
        self.url = _without_password(url)

    def close(self) -> None:
        self.client.close()

    def _bindings(self) -> dict[str, list[tuple[str, str]]]:
        """exchange -> [(routing key, queue)]."""
        out: dict[str, list[tuple[str, str]]] = {}
        for key in self.client.scan_iter(match=BINDINGS + "*", count=500):
            exchange = _text(key)[len(BINDINGS):]
            if any(word in exchange for word in _CONTROL):
                continue
            for member in self.client.smembers(key):
                parts = _text(member).split(SEP)
                if len(parts) == 3 and not any(word in parts[2] for word in _CONTROL):
                    out.setdefault(exchange, []).append((parts[0], parts[2]))
        return out

    def queues(self) -> list[str]:
        """Task queues Celery declared, plus those of unacked messages."""
        names = {queue for pairs in self._bindings().values() for _, queue in pairs}
        names |= {found.queue for found in self.unacked()}
        return sorted(names)

    def lists(self, queue: str) -> list[str]:
        """The lists holding ``queue``'s ready messages: the queue's own, then each priority step's."""
        steps = [_text(k) for k in self.client.scan_iter(match=_glob_escape(queue + SEP) + "*", count=500)]
        return [queue, *sorted(steps, key=lambda k: int(k.rsplit(SEP, 1)[1]) if k.rsplit(SEP, 1)[1].isdigit() else 99)]

    def ready(self, queue: str, chunk: int = 500) -> Iterator[Found]:
        """Every ready message of ``queue``, oldest first per list (a snapshot, for the dry run)."""
        for key in self.lists(queue):
            length = self.client.llen(key)
            for end in range(length, 0, -chunk):
                items = self.client.lrange(key, max(0, end - chunk), end - 1)
                for raw in reversed(items):
                    yield Found(queue, payload_of(raw), key, raw)

    def tail(self, key: str, skip: int) -> bytes | None:
        """The oldest element of list ``key`` but ``skip`` (those left behind)."""
        value: bytes | None = self.client.lindex(key, -1 - skip)
        return value

    def unacked(self) -> Iterator[Found]:
        """Every unacked message, oldest delivery first."""
        bindings = self._bindings()
        tags = [_text(t) for t in self.client.zrange(UNACKED_INDEX, 0, -1)]
        known = set(tags)
        tags += [_text(t) for t in self.client.hkeys(UNACKED) if _text(t) not in known]
        for tag in tags:
            raw = self.client.hget(UNACKED, tag)
            if raw is None:
                continue
            try:
                payload, exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue
            queue = resolve(bindings, _text(exchange or ""), _text(routing_key or ""))
            yield Found(queue, payload if isinstance(payload, dict) else {}, UNACKED, tag)

    def consumers(self) -> list[dict[str, Any]] | None:
        """Other connections to this database that consume as kombu does (blocked in BRPOP,
        or subscribed, as Celery workers and Flower are); None when the server does not let
        us ask (CLIENT LIST refused)."""
        try:
            me = self.client.client_id()
            clients = self.client.client_list()
        except redis.ResponseError:
            return None
        db = str(self.client.connection_pool.connection_kwargs.get("db", 0))
        return [c for c in clients if str(c.get("id")) != str(me) and str(c.get("db", db)) == db and (
            c.get("cmd") == _CONSUMING or int(c.get("psub") or 0) > 0 or int(c.get("sub") or 0) > 0)]


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def payload_of(raw: bytes | str) -> dict[str, Any]:
    """A kombu payload from its stored JSON ({} when it is not one: refused as such later)."""
    try:
        value = json.loads(raw)
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def resolve(bindings: dict[str, list[tuple[str, str]]], exchange: str, routing_key: str) -> str:
    """The queue kombu would deliver to for ``exchange``/``routing_key``: by the exchange's
    bindings (Celery's direct exchanges), else the routing key (the default exchange)."""
    for key, queue in bindings.get(exchange, ()):
        if key == routing_key:
            return queue
    return routing_key
