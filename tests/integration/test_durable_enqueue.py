"""The durability choice on a real Sentinel set-up (master, replica, three Sentinels):
``broker_transport_options={'wait_replicas': 1}`` makes ``delay()`` return only once a replica
holds the message, so a master SIGKILLed mid-burst loses no accepted task; with the replica
gone, ``delay()`` says so within ``wait_timeout`` instead of pretending."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac.exceptions import BrokerError, NotReplicated
from celeriac.testing import wait_until
from conftest import read_marks
from redis_server import SentinelSetup

WAIT = {"wait_replicas": 1, "wait_timeout": 1.0}


@pytest.fixture
def broker_url(sentinels: SentinelSetup) -> str:
    return sentinels.url


def _configure(app: Any, sentinels: SentinelSetup, durable: bool) -> None:
    app.conf.broker_transport_options = {**sentinels.transport_options, **(WAIT if durable else {})}
    app.conf.task_publish_retry = False  # a send that failed is simply not accepted
    app._reset_connections()


@pytest.fixture
def restore(app: Any) -> Iterator[None]:
    yield
    app.conf.broker_transport_options = None
    app.conf.task_publish_retry = True
    app._reset_connections()


def _produce(accepted: list[str], refused: list[str], stop: threading.Event, prefix: str, deadline: float) -> None:
    """Send until told to stop; an id is accepted only if its ``delay()`` returned."""
    import coreapp

    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        tag = f"{prefix}-{i}"
        i += 1
        try:
            coreapp.sleep.delay(0, tag)
        except BrokerError:
            refused.append(tag)
            time.sleep(0.05)
            continue
        accepted.append(tag)


@pytest.mark.parametrize("durable", [True, False], ids=["wait-1", "no-wait"])
def test_a_master_killed_mid_burst_loses_no_task_delay_accepted_with_wait_replicas(
        app: Any, restore: None, start_worker: Any, marks: Any, sentinels: SentinelSetup, durable: bool) -> None:
    _configure(app, sentinels, durable)
    accepted: list[str] = []
    refused: list[str] = []
    stop = threading.Event()
    deadline = time.monotonic() + 60
    threads = [threading.Thread(target=_produce, args=(accepted, refused, stop, f"p{n}", deadline), daemon=True)
               for n in range(3)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(accepted) >= 500, 30, message="a burst of accepted sends")
    old = sentinels.master_port()
    sentinels.server(old).kill()  # while three producers keep sending
    killed_with = len(accepted)
    new = sentinels.wait_promoted(old, timeout=30)
    stop.set()
    for thread in threads:
        thread.join(10)
    env = {"CELERIAC_TEST_SENTINEL_MASTER": sentinels.master_name}
    start_worker("-c", "2", env=env)

    def ran() -> set[str]:
        return {line.split()[0] for line in read_marks(marks, "started")}

    wanted = set(accepted)
    if durable:
        wait_until(lambda: wanted <= ran(), 60, message="every accepted task ran after the failover")
    else:  # no promise: wait for the queue to drain, then count
        wait_until(lambda: app.broker.stats(["celery"])[0].ready_total == 0, 60, message="queue drained")
        time.sleep(1.0)
    lost = sorted(wanted - ran())
    print(f"\ndurable enqueue ({'wait_replicas=1' if durable else 'no WAIT'}): master {old} -> {new}; "
          f"accepted {len(accepted)} ({killed_with} before the kill), refused {len(refused)}, lost {len(lost)} "
          f"{lost[:10]}")
    if durable:
        assert not lost


def test_with_the_replica_down_delay_raises_not_replicated_within_the_timeout(
        app: Any, restore: None, sentinels: SentinelSetup) -> None:
    import coreapp

    _configure(app, sentinels, durable=True)
    app.conf.broker_transport_options["wait_timeout"] = 0.5
    app._reset_connections()
    coreapp.add.delay(1, 2)  # replicated: returns
    sentinels.servers[1].kill()  # the replica
    began = time.monotonic()
    with pytest.raises(NotReplicated, match=r"0 of the 1 replica.*lost"):
        coreapp.add.delay(1, 2)
    took = time.monotonic() - began
    assert 0.45 <= took < 3.0, took
    with pytest.raises(NotReplicated, match="the 3 tasks"):
        app.send_many("coreapp.add", [((i, i), {}) for i in range(3)])
    # Written on the master all the same (the error says it normally runs): 1 + 1 + 3.
    assert app.broker.stats(["celery"])[0].ready_total == 5
    app.conf.task_publish_retry = True  # publish retries BrokerErrors, but not this one: one more copy only
    with pytest.raises(NotReplicated):
        coreapp.add.delay(1, 2)
    assert app.broker.stats(["celery"])[0].ready_total == 6


def test_a_retry_the_replicas_do_not_confirm_is_sent_once_not_again_and_again(
        app: Any, restore: None, start_worker: Any, marks: Any, sentinels: SentinelSetup) -> None:
    """The worker's retry is on the master, and the ack after it reaches replicas only after it:
    the worker logs the NotReplicated and goes on, instead of sending the retry until it is
    confirmed (every attempt another copy)."""
    import coreapp

    _configure(app, sentinels, durable=False)
    worker = start_worker("-c", "1", env={"CELERIAC_TEST_SENTINEL_MASTER": sentinels.master_name,
                                          "CELERIAC_TEST_WAIT_REPLICAS": "1"})
    sentinels.servers[1].kill()  # the replica
    result = coreapp.flaky.delay(1)
    assert result.get(timeout=30) == 1
    time.sleep(2.5)  # room for copies sent again by a retrying flusher to run
    assert read_marks(marks, "flaky") == ["0", "1"]
    assert "NotReplicated" in worker.log() or "replica(s) wait_replicas asks for" in worker.log()


def test_beat_counts_a_send_replicas_did_not_confirm_as_sent_and_does_not_send_the_tick_again(
        redis_url: str) -> None:
    """On a server without replicas every send is refused as NotReplicated; beat must not take
    that for "not sent" and send the same tick again each second until replicas confirm."""
    import uuid

    from celeriac import Celery, message
    from celeriac.beat.scheduler import Scheduler

    queue = f"durable-beat-{uuid.uuid4().hex[:8]}"
    app = Celery("durable-beat", broker=redis_url)
    app.conf.broker_transport_options = {"wait_replicas": 1, "wait_timeout": 0.05}
    app.conf.beat_schedule = {"slow": {"task": "durable.tick", "schedule": 4.0, "options": {"queue": queue}}}
    scheduler = Scheduler(app)
    thread = scheduler.start_thread()
    try:
        wait_until(lambda: app.broker.stats([queue])[0].ready_total >= 1, 10, message="a first send")
        time.sleep(2.5)  # a beat that retries would have sent the same tick twice more by now
    finally:
        scheduler.stop()
        thread.join(10)
    ticks = []
    while deliveries := app.broker.fetch([queue], "probe/1", 100, 0):
        ticks += [message.decode(d.body).headers["periodic_task_tick"] for d in deliveries]
        app.broker.ack(deliveries)
    app.close()
    assert ticks and len(ticks) == len(set(ticks)), ticks
