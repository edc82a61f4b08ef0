"""Tasks the core integration tests run in real worker processes.

The broker comes from CELERIAC_BROKER_URL (set by the tests); CELERIAC_TEST_LEASE shortens
the lease so recovery tests finish in seconds. Side effects that tests count go to files in
CELERIAC_TEST_DIR: one line appended per run, which survives the process that wrote it.
"""

from __future__ import annotations

import asyncio
import os
import time

from celeriac import Celery, Reject, SoftTimeLimitExceeded

app = Celery("coreapp")
app.conf.update(
    broker_lease_seconds=float(os.environ.get("CELERIAC_TEST_LEASE", "6")),
    worker_heartbeat_interval=float(os.environ.get("CELERIAC_TEST_HEARTBEAT", "1")),
    worker_shutdown_timeout=float(os.environ.get("CELERIAC_TEST_SHUTDOWN", "20")),
    task_max_redeliveries=int(os.environ.get("CELERIAC_TEST_MAX_REDELIVERIES", "3")),
    worker_autoscale_keepalive=float(os.environ.get("CELERIAC_TEST_AUTOSCALE_KEEPALIVE", "30")),
)
if os.environ.get("CELERIAC_TEST_EVENT_MAXLEN"):  # a tiny event log, so a test can make it trim
    app.conf.event_stream_maxlen = int(os.environ["CELERIAC_TEST_EVENT_MAXLEN"])
if os.environ.get("CELERIAC_TEST_REDACT"):  # task_redact_args for the worker and dashboard processes
    app.conf.task_redact_args = os.environ["CELERIAC_TEST_REDACT"].split(",")
if os.environ.get("CELERIAC_TEST_NO_ACKS_ON_FAILURE"):  # task_acks_on_failure_or_timeout=False app-wide
    app.conf.task_acks_on_failure_or_timeout = False
if os.environ.get("CELERIAC_TEST_SENTINEL_MASTER"):  # the broker URL is a sentinel:// one
    app.conf.broker_transport_options = {"master_name": os.environ["CELERIAC_TEST_SENTINEL_MASTER"]}
if os.environ.get("CELERIAC_TEST_WAIT_REPLICAS"):  # enqueues (a task's retries too) wait for replicas
    app.conf.broker_transport_options = {**(app.conf.broker_transport_options or {}), "wait_timeout": 0.3,
                                         "wait_replicas": int(os.environ["CELERIAC_TEST_WAIT_REPLICAS"])}
if os.environ.get("CELERIAC_TEST_QUEUE_SHARDS"):  # "queue=n,...": hot queues split over n hash tags
    app.conf.broker_transport_options = {**(app.conf.broker_transport_options or {}), "queue_shards": {
        q: int(n) for q, n in (p.split("=") for p in os.environ["CELERIAC_TEST_QUEUE_SHARDS"].split(","))}}


def mark(name: str, text: str = "") -> None:
    """Append one line to a file in the test's directory (atomic for short lines)."""
    directory = os.environ.get("CELERIAC_TEST_DIR")
    if directory:
        with open(os.path.join(directory, name), "a") as f:
            f.write(f"{text}\n")


@app.task
def add(x, y):
    return x + y


@app.task
def noop():
    return None


@app.task
def record(tag):
    """Leave a mark: (tag, pid, time)."""
    mark("record", f"{tag} {os.getpid()} {time.time():.4f}")
    return tag


@app.task
def sleep(seconds, tag=""):
    mark("started", f"{tag} {os.getpid()}")
    time.sleep(seconds)
    mark("finished", f"{tag} {os.getpid()}")
    return tag


@app.task
def gated(seconds, tag):
    """``sleep``, but not before the test leaves a ``gate`` file (at most 60 s): what a test does
    while such a task is known to be running happens before it can end, however slow the machine."""
    mark("started", f"{tag} {os.getpid()}")
    gate = os.path.join(os.environ.get("CELERIAC_TEST_DIR", ""), "gate")
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(seconds)
    mark("finished", f"{tag} {os.getpid()}")
    return tag


@app.task(bind=True)
def whoami(self, seconds, tag=""):
    """Runs ``seconds`` then answers with the worker that ran it (to tell attempts apart)."""
    mark("started", f"{tag} {self.request.hostname} {os.getpid()}")
    time.sleep(seconds)
    mark("finished", f"{tag} {self.request.hostname} {os.getpid()}")
    return self.request.hostname


@app.task(bind=True, max_retries=3, default_retry_delay=0.2)
def flaky(self, fail_times):
    mark("flaky", f"{self.request.retries}")
    if self.request.retries < fail_times:
        raise self.retry(exc=ConnectionError(f"attempt {self.request.retries} failed"))
    return self.request.retries


@app.task(autoretry_for=(KeyError,), retry_backoff=0.1, retry_backoff_max=0.4, retry_jitter=False, max_retries=3)
def autoretry():
    mark("autoretry", f"{time.time():.4f}")
    raise KeyError("missing")


@app.task(bind=True)
def progress(self, steps, pause):
    for step in range(steps):
        self.update_state(state="PROGRESS", meta={"progress": int(100 * step / steps), "message": f"step {step}"})
        time.sleep(pause)
    return {"done": steps}


@app.task(soft_time_limit=0.5, time_limit=3)
def soft_limited():
    try:
        time.sleep(5)
    except SoftTimeLimitExceeded:
        mark("soft", "caught")
        return "cleaned up"
    return "not interrupted"


@app.task(soft_time_limit=0.3, time_limit=1)
def hard_limited():
    mark("hard", str(os.getpid()))
    deadline = time.time() + 10
    while time.time() < deadline:  # swallows the soft limit: only the hard limit can stop it
        try:
            time.sleep(0.05)
        except SoftTimeLimitExceeded:
            pass
    return "should never get here"


@app.task(reject_on_worker_lost=False)
def crash():
    """Celery's behaviour, asked for: a lost process is a FAILURE, not a redelivery."""
    mark("crash", str(os.getpid()))
    os._exit(7)


@app.task(acks_late=True, reject_on_worker_lost=True)
def poison():
    mark("poison", str(os.getpid()))
    os._exit(9)


@app.task
def crash_once(tag):
    """Dies the first time it runs, succeeds when redelivered (the default: nothing accepted is
    lost when a pool process is killed, by the OOM killer say)."""
    if not os.path.exists(os.path.join(os.environ["CELERIAC_TEST_DIR"], f"crashed-{tag}")):
        mark(f"crashed-{tag}")
        os._exit(1)
    return "survived"


@app.task(rate_limit="10/s")
def limited(tag):
    mark("limited", f"{tag} {time.time():.4f}")
    return tag


@app.task(bind=True, max_retries=3)
def retry_later(self, seconds, countdown):
    """Runs ``seconds``, then asks to run again ``countdown`` seconds later."""
    mark("retry_later", str(self.request.retries))
    time.sleep(seconds)
    raise self.retry(countdown=countdown)


@app.task(bind=True, max_retries=1)
def retry_once(self, tag):
    """Asks once to run again a moment later, then succeeds; marks each attempt."""
    mark("retry_once", f"{tag} {self.request.retries}")
    if not self.request.retries:
        raise self.retry(countdown=0.2)
    return tag


@app.task(acks_late=True)
def refuse(tag):
    """Rejects itself for good (dead-lettered), once per run; marks each run."""
    mark("refused", tag)
    raise Reject(f"refused: {tag}", requeue=False)


@app.task(rate_limit="2/s")
def paced(tag):
    mark("paced", f"{tag} {time.time():.4f}")
    return tag


@app.task(ignore_result=True)
def quiet(tag):
    mark("quiet", tag)


@app.task(track_started=True)
def tracked(seconds):
    time.sleep(seconds)
    return "tracked"


@app.task
def pid():
    return os.getpid()


@app.task
def unencodable_result():
    return object()


@app.task
def fail(message):
    raise ValueError(message)


_hoard: list[bytearray] = []


@app.task
def hog(megabytes):
    """Keep memory after returning, as a leaky task would."""
    _hoard.append(bytearray(megabytes * 1024 * 1024))
    return os.getpid()


@app.task(acks_late=True, acks_on_failure_or_timeout=False)
def fail_unacked(message):
    """Celery's acks_on_failure_or_timeout=False: a failure rejects the message (dead letters)."""
    raise ValueError(message)


@app.task(acks_late=False, acks_on_failure_or_timeout=False)
def fail_early_acked(message):
    """Acked before it ran: acks_on_failure_or_timeout has nothing left to decide."""
    raise ValueError(message)


@app.task(acks_late=True, acks_on_failure_or_timeout=False, soft_time_limit=0.3, time_limit=10)
def soft_limited_unacked():
    time.sleep(5)  # SoftTimeLimitExceeded is not caught: the task fails with it


@app.task(acks_late=True, acks_on_failure_or_timeout=False, soft_time_limit=0.3, time_limit=1)
def hard_limited_unacked():
    mark("hard_unacked", str(os.getpid()))
    deadline = time.time() + 10
    while time.time() < deadline:  # swallows the soft limit: only the hard limit can stop it
        try:
            time.sleep(0.05)
        except SoftTimeLimitExceeded:
            pass
    return "should never get here"


@app.task(acks_late=False)
def early_acked(tag):
    mark("early", tag)
    return tag


@app.task
async def ticker(seconds):
    """Marks the time every 50 ms on its event loop (-P asyncio): a gap is the loop blocked."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        mark("tick", f"{time.monotonic():.3f}")
        await asyncio.sleep(0.05)
    return "ticked"


@app.task(acks_late=True, acks_on_failure_or_timeout=False, time_limit=0.5)
async def async_hard_limited_unacked():
    await asyncio.sleep(10)  # -P asyncio: its hard limit is a cancellation, not a kill
    return "should never get here"
