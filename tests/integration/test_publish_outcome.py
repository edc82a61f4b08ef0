"""What ``apply_async`` says when the broker fails mid-send: "not sent" only when it surely was
not, :class:`OutcomeUnknown` when the command reached Redis and its reply never came back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from celeriac import Celery
from celeriac.exceptions import BrokerError, OutcomeUnknown
from redis_server import RedisServer, free_port, start_redis


@pytest.fixture
def debug_redis() -> Iterator[RedisServer]:
    server = start_redis("--enable-debug-command", "yes")
    yield server
    server.stop()


def _app(url: str) -> Celery:
    app = Celery("outcome", broker=url, backend=url, set_as_current=False)
    app.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0, "interval_step": 0}
    return app


def test_a_send_whose_reply_is_lost_says_it_may_have_been_queued_and_it_was(debug_redis: RedisServer):
    # The server is busy (DEBUG SLEEP) when the send arrives: the client gives up waiting for the
    # reply after its socket timeout, and the server applies the command once it wakes.
    app = _app(debug_redis.url + "?socket_timeout=0.3")
    admin = redis.Redis(port=debug_redis.port)
    busy = redis.Redis(port=debug_redis.port)
    try:
        app.send_task("anything", (0,))  # connected (a connect that times out sent nothing)
        sleeper = threading.Thread(target=lambda: busy.execute_command("DEBUG", "SLEEP", 2))
        sleeper.start()
        time.sleep(0.2)
        with pytest.raises(OutcomeUnknown, match="may have been queued"):
            app.send_task("anything", (1,))
        sleeper.join(10)
        stats = app.broker.stats(["celery"])
        assert stats[0].ready_total >= 2  # it did land: the caller was right not to be told "refused"
        assert admin.ping()
    finally:
        app.close()
        admin.close()
        busy.close()


def test_a_send_to_a_broker_that_is_not_there_is_refused_plainly():
    app = _app(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(BrokerError) as caught:
            app.send_task("anything", (1,))
        assert not isinstance(caught.value, OutcomeUnknown)
        assert "cannot reach Redis" in str(caught.value)
    finally:
        app.close()
