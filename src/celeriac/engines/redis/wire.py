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
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import hiredis
import redis
from redis.commands.core import Script

if TYPE_CHECKING:
    from .cluster_wire import ClusterWire

from .connect import is_cluster, make_client, server_of

try:  # what redis-py's hiredis reader returns when a reply is not all in its buffer yet
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _PARTIAL
except ImportError:  # an older redis-py, whose reader says False: every reply through read_response
    _PARTIAL = None

Command = Sequence[Any]  # a command and its arguments, or (one server) its RESP bytes, packed already

_pack = hiredis.pack_command
_PUSH = getattr(hiredis, "PushNotification", ())
_PLAIN_REPLIES = frozenset({bytes, int, type(None)})

# How long a caller may poll for its reply before it sleeps in the kernel. A local server
# answers a small command in tens of microseconds, while waking a thread that slept costs as
# much again (several times more on virtual machines, where a round trip that sleeps takes
# 60 µs and one that polls 25 µs). Only for local servers: over a network the reply takes
# longer than this anyway.
SPIN_SECONDS = 0.0001


def wait_slice(timeout: float, socket_timeout: float | None) -> float:
    """How long one blocking command may ask the server to wait: under the socket timeout, or
    the client gives up on a reply the server is still rightly holding back. Every blocking
    wait loops until its own deadline, so a shorter slice only costs a round trip."""
    if socket_timeout is None or socket_timeout <= 0:
        return timeout
    return min(timeout, max(0.05, socket_timeout / 2))


def is_local(conn: Any) -> bool:
    """Whether a connected connection reaches this machine (read from the connection, not the
    pool: a Sentinel-managed one learns its master's address only when it connects)."""
    if getattr(conn, "path", None):  # a unix socket
        return True
    host = str(getattr(conn, "host", ""))
    return host in ("localhost", "::1") or host.startswith("127.")


class ReplyLost(redis.exceptions.ConnectionError):
    """The connection failed after the commands were written: the server may have applied them."""


def reply_lost(exc: BaseException) -> BaseException:
    """``exc`` as met once the commands were written: a lost connection becomes ReplyLost."""
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)) \
            and not isinstance(exc, ReplyLost):
        return ReplyLost(f"{exc} (after the command was sent)")
    return exc


class _Held:
    """A thread's connection, closed as soon as the thread's locals are dropped (the thread
    ended) rather than whenever the cycle collector reaches it."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __del__(self) -> None:
        try:
            self.conn.disconnect()  # only closes our copy of the socket in a forked child
        except Exception:
            pass


class Packed(tuple[Any, ...]):
    """A command made once and sent many times (a pool process's fetch), with its RESP bytes
    packed once: a fetch names ten streams, and hiredis formats each argument through sprintf."""

    packed: bytes

    def __new__(cls, command: Command) -> Packed:
        self = super().__new__(cls, command)
        self.packed = _pack(tuple(command))
        return self


def read_replies(conn: Any, count: int) -> list[Any]:
    """The next ``count`` replies on ``conn``, an error reply as its ``ResponseError``.

    The first reply needs a read from the socket, which redis-py's ``read_response`` does
    (timeouts, disconnects, push messages); the rest of a batch is then usually in the hiredis
    reader's buffer already, and taking it from there directly skips redis-py's four Python
    layers per reply: a finished batch is three replies per task (``benchmarks/README.md``)."""
    parser = conn._parser
    reader = getattr(parser, "_reader", None) if _PARTIAL is not None else None
    replies: list[Any] = []
    append = replies.append
    while len(replies) < count:
        reply = reader.gets(False) if reader is not None else _PARTIAL
        if type(reply) in _PLAIN_REPLIES:  # bytes, integers, nil: most replies
            append(reply)
        elif reply is _PARTIAL:
            try:
                append(conn.read_response(disable_decoding=True))
            except redis.exceptions.ResponseError as exc:
                append(exc)
            if reader is not None:  # read_response may have reconnected (or a push handler)
                reader = getattr(parser, "_reader", None)
        elif isinstance(reply, _PUSH):  # what read_response does with one: hand it over, read on
            parser.handle_push_response(reply)
        elif isinstance(reply, redis.exceptions.ConnectionError):
            raise reply  # as read_response raises it (a server still LOADING, say)
        elif type(reply) is list and reply and isinstance(reply[0], redis.exceptions.ConnectionError):
            raise reply[0]
        else:
            append(reply)
    return replies


class Wire:
    """Per-thread raw connections, made by the redis-py connection pool ``pool()`` returns."""

    def __init__(self, pool: Callable[[], redis.ConnectionPool]) -> None:
        self._pool = pool
        self._local = threading.local()
        self._lock = threading.Lock()
        # Weak, so the connection of a thread that ended is closed with its thread-locals: a
        # server that starts a thread per request must not pile up a connection per request.
        self._held: weakref.WeakSet[_Held] = weakref.WeakSet()
        self._sources: dict[str, Any] = {}
        # Scripts not yet loaded by this process: the first call using one loads it in the same
        # write, so a fresh server never makes a big batch fail NOSCRIPT and travel twice.
        self._unloaded: set[str] = set()
        self._closes = 0  # a thread's connection from before the last close() is replaced

    def _conn(self) -> Any:
        local = self._local
        held = getattr(local, "held", None)
        # A forked child must not share its parent's sockets.
        if held is None or local.pid != os.getpid() or local.closes != self._closes:
            pool = self._pool()
            # Made as the pool makes them, but not through make_connection(): the pool counts
            # each against max_connections (100) and uncounts only those released to it, so a
            # wire that reconnects through a restart or failover would soon be refused for good.
            conn: Any = pool.connection_class(**pool.connection_kwargs)
            # Connect here, not on first send: a Sentinel-managed connection asks the Sentinels
            # for the master only in connect(), while a send reconnects to the last address.
            conn.connect()
            held = local.held = _Held(conn)
            local.pid = os.getpid()
            local.spin = is_local(conn)
            local.closes = self._closes
            with self._lock:
                self._held.add(held)
        return held.conn

    def call(self, commands: Sequence[Command], *, raise_on_error: bool = True, spin: bool = False) -> list[Any]:
        """Send ``commands`` in one write and return their replies in order. ``spin``: poll for
        the first reply briefly before sleeping (a caller waiting on one small command).

        An error reply comes back as the ``ResponseError`` in its place, or (``raise_on_error``)
        is raised once every reply was read, so the connection stays in step. A connection
        failure disconnects and raises: the caller's retry policy decides what to resend."""
        if not commands:
            return []
        if self._unloaded:
            shas = list(self._unloaded)
            loads = [("SCRIPT", "LOAD", self._sources[sha]) for sha in shas]
            replies = self._round_trip([*loads, *commands], spin)[len(loads):]
            self._unloaded.difference_update(shas)
        else:
            replies = self._round_trip(commands, spin)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, redis.exceptions.NoScriptError)]
        if missing:
            # The server lost its script cache (restart, SCRIPT FLUSH). A script it did not know
            # did not run: load it and send those commands again, in their order.
            self._round_trip([("SCRIPT", "LOAD", self._sources[sha])
                              for sha in dict.fromkeys(commands[i][1] for i in missing)])
            for i, reply in zip(missing, self._round_trip([commands[i] for i in missing]), strict=True):
                replies[i] = reply
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, redis.exceptions.ResponseError):
                    raise reply
        return replies

    def _round_trip(self, commands: Sequence[Command], spin: bool = False) -> list[Any]:
        conn = self._conn()
        written = False
        try:
            # A command given as bytes was packed by its maker (results.packed_commands).
            conn.send_packed_command([b"".join([c if type(c) is bytes else c.packed if type(c) is Packed
                                                else _pack(tuple(c)) for c in commands])])
            written = True
            if spin and self._local.spin:
                deadline = time.perf_counter() + SPIN_SECONDS
                while not conn.can_read(0) and time.perf_counter() < deadline:
                    pass
            replies = read_replies(conn, len(commands))
        except BaseException as exc:
            # A connection error, or anything that interrupted us mid-reply (a soft time limit's
            # SIGALRM in a task that was enqueueing): replies may be left unread, and the next
            # caller must not take them for its own. The next call opens a new connection, so
            # under Sentinel it goes to whichever server is master by then.
            conn.disconnect()
            self._local.held = None
            lost = reply_lost(exc) if written else exc
            if lost is exc:
                raise
            raise lost from exc
        return replies

    def one(self, *command: Any, spin: bool = False) -> Any:
        return self.call([command], spin=spin)[0]

    def script(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Command:
        """The command running ``script`` by its digest (its source is kept for a reload)."""
        if script.sha not in self._sources:
            self._sources[script.sha] = script.script
            self._unloaded.add(script.sha)
        return ("EVALSHA", script.sha, len(keys), *keys, *args)

    def evalsha(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return self.call([self.script(script, keys, args)])[0]

    def close(self) -> None:
        with self._lock:
            held = list(self._held)
            self._held.clear()
            self._closes += 1
        for one in held:
            one.conn.disconnect()  # redis-py only shuts a socket down in the process that opened it


class Connections:
    """The redis-py client and the wire for one URL, as the broker and the result store each
    hold them: made again in a forked child, which must not share its parent's sockets. The
    wire takes its connections from the client's pool, so under Sentinel it follows the master."""

    def __init__(self, url: str, *, socket_timeout: float | None, socket_connect_timeout: float | None,
                 transport_options: Mapping[str, Any] | None = None,
                 setting: str = "broker_transport_options") -> None:
        self.url = url
        # Query parameters in the URL win over these.
        self._options = {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_connect_timeout,
                         "health_check_interval": 30}
        self._transport = dict(transport_options or {})
        self._setting = setting
        self.server = server_of(url, self._transport)
        self._pid = os.getpid()
        self._client = make_client(url, self._options, self._transport, setting)
        self.cluster = is_cluster(url)
        self.wire: Wire | ClusterWire
        if self.cluster:
            from .cluster_wire import ClusterWire

            self.socket_timeout: float | None = socket_timeout
            self.wire = ClusterWire(lambda: self.client)
        else:
            self.socket_timeout = self._client.connection_pool.connection_kwargs.get("socket_timeout")
            self.wire = Wire(lambda: self.client.connection_pool)

    @property
    def client(self) -> Any:
        """A ``redis.Redis``, or a ``redis.cluster.RedisCluster`` on a cluster."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._client = make_client(self.url, self._options, self._transport, self._setting)
        return self._client

    def wait(self, timeout: float, floor: float = 0.0) -> float:
        """The server-side wait of one blocking command (see ``wait_slice``), at least ``floor``."""
        return max(wait_slice(timeout, self.socket_timeout), floor)

    def close(self) -> None:
        self.wire.close()
        self._client.close()
