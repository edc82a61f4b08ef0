"""The lean per-task wire on a Redis Cluster: the same ``call`` as ``wire.Wire``, with the
commands of one call grouped per node — one buffer written to every node involved, then each
node's replies read — so a batch costs one round trip per node, all nodes in parallel.

Replies come back in the order of the commands; commands to one node run in their order,
commands to different nodes in no order relative to each other (a caller that needs one write
before another on a different node makes two calls). A command answered ``MOVED`` or ``ASK``
did not run: it is sent again where the cluster says (after ``MOVED`` the client re-reads the
slot map), so a slot migration or a promoted replica neither loses nor doubles it. A node that
cannot be reached raises ``ConnectionError`` as the one-server wire does, and the slot map is
read again before the next call, so the caller's retry reaches the replica promoted in its place.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.crc import key_slot

from .wire import Command, read_replies, reply_lost

_pack = hiredis.pack_command
REDIRECTS = 5  # MOVED / ASK hops one command may take before the error reaches the caller


def command_key(command: Command) -> Any:
    """The key that decides a command's slot (every command the wire sends has one)."""
    name = str(command[0]).upper()
    if name in ("EVALSHA", "EVAL"):
        return command[3]
    if name == "XREADGROUP":
        return command[[str(c).upper() for c in command].index("STREAMS") + 1]
    return command[1]


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class ClusterWire:
    """Per-thread raw connections, one per cluster node, made by the node's redis-py pool."""

    def __init__(self, client: Callable[[], RedisCluster]) -> None:
        self._client = client
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sources: dict[str, str] = {}
        self._loaded: dict[str, set[str]] = {}  # node name -> script digests it was sent
        self._stale = False  # a node failed: read the slot map again before the next call
        self._closes = 0
        self._conns: list[Any] = []

    def _thread_conns(self) -> dict[str, Any]:
        local = self._local
        if getattr(local, "pid", None) != os.getpid() or local.closes != self._closes:
            local.conns = {}
            local.pid = os.getpid()
            local.closes = self._closes
        conns: dict[str, Any] = local.conns
        return conns

    def _conn(self, node: Any) -> Any:
        conns = self._thread_conns()
        conn = conns.get(node.name)
        if conn is None:
            conn = node.redis_connection.connection_pool.make_connection()
            conn.connect()
            conns[node.name] = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _drop(self, node_name: str) -> None:
        conn = self._thread_conns().pop(node_name, None)
        if conn is not None:
            conn.disconnect()
            with self._lock:
                self._conns = [c for c in self._conns if c is not conn]
        self._stale = True

    def node_for(self, key: Any) -> Any:
        return self._client().nodes_manager.get_node_from_slot(key_slot(_bytes(key)))

    def call(self, commands: Sequence[Command], *, raise_on_error: bool = True, spin: bool = False) -> list[Any]:
        """As ``Wire.call``; ``spin`` is accepted for the same signature (a cluster's nodes
        are other processes even on one machine, and several are read in turn)."""
        return self._call(commands, raise_on_error, None)[0]

    def call_waiting(self, commands: Sequence[Command], wait: Command, *,
                     spin: bool = False) -> tuple[list[Any], list[Any]]:
        """``call``, with ``wait`` (a keyless ``WAIT``) written after the commands in the buffer of
        every node that ran some of them: replication is per node, so each node that took a write
        must confirm its own, and one node's ``WAIT`` says nothing of another's. Still one round
        trip per node. Returns the replies and each such node's ``WAIT`` reply."""
        return self._call(commands, True, wait)

    def _call(self, commands: Sequence[Command], raise_on_error: bool,
              trailer: Command | None) -> tuple[list[Any], list[Any]]:
        if not commands:
            return [], []
        if self._stale:
            self._stale = False
            self._client().nodes_manager.initialize()
        replies: list[Any] = [None] * len(commands)
        trailed: list[Any] = []  # the trailer's reply from each node that ran a command
        todo: dict[int, Any] = {i: None for i in range(len(commands))}  # index -> ASK target or None
        for hop in range(REDIRECTS + 1):
            asked = {i: node for i, node in todo.items() if node is not None}
            groups: dict[str, tuple[Any, list[int]]] = {}
            owner: dict[int, str] = {}
            for i, target in todo.items():
                node = target or self.node_for(command_key(commands[i]))
                groups.setdefault(node.name, (node, []))[1].append(i)
                owner[i] = node.name
            todo, moved, pause = {}, False, 0.0
            got, trailers = self._round_trip(groups, commands, asked, trailer)
            ran: set[str] = set()
            for i, reply in got.items():
                verdict = "done" if hop == REDIRECTS else self._redirect(reply)
                if verdict == "done":
                    replies[i] = reply
                    ran.add(owner[i])
                    continue
                todo[i] = None
                if verdict == "ask":  # this one command goes to the importing node
                    todo[i] = self._client().nodes_manager.get_node(reply.host, reply.port)
                moved = moved or verdict == "moved" or (verdict == "ask" and todo[i] is None)
                pause = max(pause, 0.02 * (hop + 1) if verdict == "later" else 0.0)
            trailed += [trailers[name] for name in ran if name in trailers]
            if not todo:
                break
            if moved:
                self._client().nodes_manager.initialize()
            time.sleep(pause)
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, redis.exceptions.ResponseError):
                    raise reply
            for reply in trailed:
                if isinstance(reply, redis.exceptions.ResponseError):
                    raise reply
        return replies, trailed

    def _redirect(self, reply: Any) -> str:
        """What to do with a reply: ``done``, or send the command again (``ask``: to the node the
        reply names; ``moved``: after reading the slot map again; ``later``: a multi-key command
        while its slot migrates; ``resend``: a script the node did not have)."""
        if isinstance(reply, redis.exceptions.MovedError):
            return "moved"
        if isinstance(reply, redis.exceptions.AskError):
            return "ask"
        if isinstance(reply, redis.exceptions.TryAgainError):
            return "later"
        if isinstance(reply, redis.exceptions.NoScriptError):
            return "resend"
        if isinstance(reply, redis.exceptions.ClusterDownError):
            self._stale = True  # a master is failing over: read the map before the next call
        return "done"

    def _round_trip(self, groups: dict[str, tuple[Any, list[int]]], commands: Sequence[Command],
                    asked: dict[int, Any], trailer: Command | None = None) -> tuple[dict[int, Any], dict[str, Any]]:
        """Write each node its commands (and ``trailer`` after them), then read every node's
        replies (so the nodes work in parallel). Returns the commands' replies and each node's
        trailer reply."""
        sent: list[tuple[str, Any, list[int], int]] = []
        tail = _pack(tuple(trailer)) if trailer is not None else b""
        try:
            for name, (node, indexes) in groups.items():
                conn = self._conn(node)
                data, loads = self._pack(name, indexes, commands, asked)
                conn.send_packed_command([data + tail])
                sent.append((name, conn, indexes, loads))
        except BaseException as exc:
            for name in groups:
                self._drop(name)
            lost = reply_lost(exc) if sent else exc  # a node written before the failure may have applied it
            if lost is exc:
                raise
            raise lost from exc
        out: dict[int, Any] = {}
        trailers: dict[str, Any] = {}
        failure: BaseException | None = None
        for name, conn, indexes, loads in sent:
            if failure is not None:
                self._drop(name)  # replies left unread: the next caller must not take them
                continue
            asking = sum(1 for i in indexes if i in asked)
            try:
                read = self._read(conn, loads + asking + len(indexes) + (trailer is not None))
            except BaseException as exc:
                self._drop(name)
                self._loaded.pop(name, None)
                failure = exc
                continue
            if trailer is not None:
                trailers[name] = read.pop()
            mine = self._strip_asking(read[loads:], indexes, asked)
            for i, reply in zip(indexes, mine, strict=True):
                if isinstance(reply, redis.exceptions.NoScriptError):
                    self._loaded.pop(name, None)  # the node lost its cache: load with the resend
                out[i] = reply
        if failure is not None:
            lost = reply_lost(failure)
            if lost is failure:
                raise failure
            raise lost from failure
        return out, trailers

    def _pack(self, name: str, indexes: list[int], commands: Sequence[Command],
              asked: dict[int, Any]) -> tuple[bytes, int]:
        """One node's buffer: scripts it was never sent are loaded first, in the same write."""
        loaded = self._loaded.setdefault(name, set())
        packed: list[bytes] = []
        for sha in dict.fromkeys(str(commands[i][1]) for i in indexes if str(commands[i][0]).upper() == "EVALSHA"):
            if sha not in loaded:
                load: tuple[Any, ...] = ("SCRIPT", "LOAD", self._sources[sha])
                packed.append(_pack(load))
                loaded.add(sha)
        loads = len(packed)
        for i in indexes:
            if i in asked:
                packed.append(_pack(("ASKING",)))
            packed.append(_pack(tuple(commands[i])))
        return b"".join(packed), loads

    @staticmethod
    def _read(conn: Any, count: int) -> list[Any]:
        return read_replies(conn, count)

    @staticmethod
    def _strip_asking(read: list[Any], indexes: list[int], asked: dict[int, Any]) -> list[Any]:
        if not asked:
            return read
        out: list[Any] = []
        at = 0
        for i in indexes:
            if i in asked:
                at += 1  # the ASKING reply
            out.append(read[at])
            at += 1
        return out

    def one(self, *command: Any, spin: bool = False) -> Any:
        return self.call([command], spin=spin)[0]

    def script(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Command:
        self._sources.setdefault(script.sha, script.script)  # type: ignore[arg-type]
        return ("EVALSHA", script.sha, len(keys), *keys, *args)

    def evalsha(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        return self.call([self.script(script, keys, args)])[0]

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
            self._closes += 1
        for conn in conns:
            conn.disconnect()
