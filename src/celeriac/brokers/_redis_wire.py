"""Lean round trips for the per-task paths: commands packed by hiredis in one buffer, replies
read back in order, on a connection each thread keeps to itself.

redis-py's pipeline spends about 20 µs of Python per finished task around five small commands
(connection checkout, retry wrapper, per-command packing and response callbacks); this path
spends a third of that (``benchmarks/README.md``). redis-py still opens, authenticates, health-
checks and reads each connection, so TLS, unix sockets, ACL users and RESP parsing stay its job.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis
from redis.commands.core import Script

Command = Sequence[Any]

_pack = hiredis.pack_command


class Wire:
    """Per-thread raw connections, made by the redis-py connection pool ``pool()`` returns."""

    def __init__(self, pool: Callable[[], redis.ConnectionPool]) -> None:
        self._pool = pool
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[Any] = []

    def _conn(self) -> Any:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():  # a forked child must not share sockets
            conn = local.conn = self._pool().make_connection()
            local.pid = os.getpid()
            with self._lock:
                self._conns.append(conn)
        return conn

    def call(self, commands: Sequence[Command], *, raise_on_error: bool = True) -> list[Any]:
        """Send ``commands`` in one write and return their replies in order.

        An error reply comes back as the ``ResponseError`` in its place, or (``raise_on_error``)
        is raised once every reply was read, so the connection stays in step. A connection
        failure disconnects and raises: the caller's retry policy decides what to resend."""
        conn = self._conn()
        try:
            conn.send_packed_command([b"".join([_pack(tuple(c)) for c in commands])])
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response(disable_decoding=True))
                except redis.exceptions.ResponseError as exc:
                    replies.append(exc)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            conn.disconnect()
            raise
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, redis.exceptions.ResponseError):
                    raise reply
        return replies

    def one(self, *command: Any) -> Any:
        return self.call([command])[0]

    def evalsha(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run a registered script by its digest; a server that lost its script cache (restart,
        SCRIPT FLUSH) gets the source once, which also caches it again."""
        reply = self.call([("EVALSHA", script.sha, len(keys), *keys, *args)], raise_on_error=False)[0]
        if isinstance(reply, redis.exceptions.NoScriptError):
            reply = self.call([("EVAL", script.script, len(keys), *keys, *args)], raise_on_error=False)[0]
        if isinstance(reply, redis.exceptions.ResponseError):
            raise reply
        return reply

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.disconnect()  # redis-py only shuts a socket down in the process that opened it
