"""The Redis broker's own connection handling (``engines/redis/wire.py``), against the tests'
redis-server: script cache loss, per-thread connections, blocking reads and interrupted calls."""

from __future__ import annotations

import pytest

from celeriac import brokers

from .test_broker_contract import Q, bodies


def test_redis_works_on_after_the_server_loses_its_scripts(redis_url: str) -> None:
    """A restarted Redis (or SCRIPT FLUSH) forgets the scripts the broker runs by digest: the
    first call that finds one missing loads it and runs again, and nothing is lost or doubled."""
    import redis

    broker = brokers.from_url(redis_url)
    raw = redis.Redis.from_url(redis_url)
    try:
        broker.enqueue_many([(Q, b"a", 0, 0.0, ""), (Q, b"b", 0, 0.0, "")])  # loads xadd_many
        raw.script_flush()
        broker.enqueue_many([(Q, b"c", 0, 0.0, ""), (Q, b"d", 0, 0.0, ""), (Q, b"later", 0, 60.0, "k")])
        raw.script_flush()
        got = broker.fetch([Q], "w/1", 10, 0)
        assert bodies(got) == [b"a", b"b", b"c", b"d"]
        assert broker.stats([Q])[0].delayed == 1
        broker.ack(got)
        assert broker.stats([Q])[0].unacked == 0
    finally:
        broker.close()
        raw.close()


def test_redis_connections_of_finished_threads_are_closed(redis_url: str) -> None:
    """Each thread enqueues on a connection of its own; a server starting a thread per request
    must not leave one open Redis connection behind per request."""
    import gc
    import threading

    import redis

    broker = brokers.from_url(redis_url)
    raw = redis.Redis.from_url(redis_url)
    try:
        before = len(raw.client_list())
        for i in range(30):
            thread = threading.Thread(target=broker.enqueue, args=(Q, b"%d" % i))
            thread.start()
            thread.join()
        gc.collect()
        assert len(raw.client_list()) <= before + 2
        assert broker.stats([Q])[0].ready_total == 30
        broker.close()
        broker.enqueue(Q, b"after close")  # a closed broker reconnects on use, as redis-py does
        assert broker.stats([Q])[0].ready_total == 31
    finally:
        broker.close()
        raw.close()


def test_redis_blocking_reads_outlast_a_short_socket_timeout(redis_url: str) -> None:
    """Blocking fetch, log read and the promoter's wait ask the server for less than the socket
    timeout, so a long wait ends empty-handed instead of with a client-side TimeoutError."""
    broker = brokers.from_url(redis_url, socket_timeout=0.3)
    try:
        assert broker.fetch([Q], "w/1", 1, timeout=0.8) == []
        assert broker.log_read("contract-log", None, 10, timeout=0.8) == []
        broker.wait_delayed([Q], 0.8)
        broker.enqueue(Q, b"x")
        assert bodies(broker.fetch([Q], "w/1", 1, timeout=0.8)) == [b"x"]
    finally:
        broker.close()


def test_redis_a_call_interrupted_mid_reply_leaves_no_reply_for_the_next(redis_url: str) -> None:
    """A soft time limit can raise inside a task that is enqueueing; the reply it never read
    must not be read by the next command on that thread's connection."""
    broker = brokers.from_url(redis_url)
    wire = broker.wire  # type: ignore[attr-defined]
    conn = wire._conn()
    real = conn.read_response

    def interrupted(*args: object, **kwargs: object) -> object:
        conn.read_response = real
        raise KeyboardInterrupt

    try:
        assert wire.one("SET", "celeriac-test-k", b"v") == b"OK"
        conn.read_response = interrupted
        with pytest.raises(KeyboardInterrupt):
            wire.one("GET", "celeriac-test-k")
        assert wire.one("INCR", "celeriac-test-n") == 1  # not the GET's b"v"
    finally:
        broker.close()


def test_redis_the_wire_reconnects_more_often_than_the_pool_allows_connections(redis_url: str) -> None:
    """A broker reconnecting through a failover or restart makes a new connection each time; the
    pool's max_connections (100) must not refuse the 101st for the life of the process."""
    broker = brokers.from_url(redis_url)
    try:
        for i in range(120):
            broker.enqueue(Q, b"%d" % i)
            broker.wire.close()  # as a connection error does: the next call makes a new one
        assert broker.stats([Q])[0].ready_total == 120
    finally:
        broker.close()


def test_redis_replies_of_one_write_come_back_in_order_whatever_their_size(redis_url: str) -> None:
    """Replies are read from the socket once and the rest taken from the reader's buffer: a
    batch whose replies span several socket reads, with error replies among them, still gets
    each reply in its place, and the connection stays in step for the next call."""
    broker = brokers.from_url(redis_url)
    wire = broker.wire  # type: ignore[attr-defined]
    big = b"x" * 300_000  # several times the parser's 64 KiB read buffer
    try:
        replies = wire.call([("SET", "wire-big", big), ("GET", "wire-big"), ("INCR", "wire-big"),
                             ("GET", "wire-missing"), ("RPUSH", "wire-list", b"a", b"b"),
                             ("LRANGE", "wire-list", 0, -1), ("GET", "wire-big"), ("DEL", "wire-list")],
                            raise_on_error=False)
        assert replies[0] in (b"OK", "OK")
        assert replies[1] == big and replies[6] == big
        assert "not an integer" in str(replies[2])
        assert replies[3] is None
        assert replies[4] == 2 and replies[5] == [b"a", b"b"] and replies[7] == 1
        with pytest.raises(Exception, match="not an integer"):
            wire.call([("INCR", "wire-big"), ("GET", "wire-missing")])
        assert wire.call([("GET", "wire-missing"), ("STRLEN", "wire-big")]) == [None, len(big)]
    finally:
        broker.close()


def test_redis_result_commands_packed_ahead_are_the_bytes_hiredis_packs() -> None:
    """A finished batch's result commands are packed by the result store, not by hiredis: they
    must be the very bytes hiredis makes of the same commands, with and without expiry, for
    ready and not-ready states, and for ids that are not ASCII."""
    import hiredis

    from celeriac.engines.redis.results import RedisBackend, packed_commands

    records = [("6f1c0c8e-1b7a-4c1e-9e57-0d2f4b1d5a11", b'{"status":"SUCCESS","result":null}', True),
               ("started-one", b'{"status":"STARTED"}', False),
               ("caf\u00e9-\u00fcber-\u4e2d", b"", True),
               ("x" * 300, b"\x00\r\n$3\r\n" * 50, True)]
    for ttl in (86_400_000, 1, 0):
        expected = [hiredis.pack_command(tuple(c)) for c in RedisBackend.tuple_commands(records, ttl)]
        assert packed_commands(records, ttl) == expected, ttl
