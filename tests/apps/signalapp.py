"""An app that hangs alerting on Celery's signals, as users do (seed 003's critical-error alerts).

Every receiver appends one JSON line to ``$CELERIAC_TEST_DIR/signals`` (``O_APPEND``: lines from
several processes do not interleave): the signal, the sender's name and the keyword arguments
the test checks. The app also puts its own handler on the root logger and sets
``worker_hijack_root_logger = False``: worker log lines must reach that handler.
"""

from __future__ import annotations

import json
import logging
import os
import time

from celeriac import Celery, signals

app = Celery("signalapp")
app.conf.update(worker_hijack_root_logger=False, broker_lease_seconds=6.0, worker_heartbeat_interval=1.0)

DIRECTORY = os.environ.get("CELERIAC_TEST_DIR", "")

if DIRECTORY:
    user_handler = logging.FileHandler(os.path.join(DIRECTORY, "user.log"))
    user_handler.setFormatter(logging.Formatter("USER %(levelname)s %(message)s"))
    logging.getLogger().addHandler(user_handler)


def _name(sender: object) -> str:
    if sender is None or isinstance(sender, str):
        return str(sender)
    return str(getattr(sender, "name", None) or type(sender).__name__)


def _write(signal_name: str, sender: object, **fields: object) -> None:
    if not DIRECTORY:
        return
    line = json.dumps({"signal": signal_name, "sender": _name(sender), "pid": os.getpid(), **fields},
                      default=repr) + "\n"
    fd = os.open(os.path.join(DIRECTORY, "signals"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@signals.task_failure.connect
def on_failure(sender=None, task_id=None, exception=None, args=None, kwargs=None, traceback=None,
               einfo=None, **_):
    _write("task_failure", sender, task_id=task_id, exception=repr(exception), args=args, kwargs=kwargs,
           einfo=str(einfo)[-200:])


@signals.task_success.connect
def on_success(sender=None, result=None, **_):
    _write("task_success", sender, result=result, task_id=sender.request.id if sender is not None else None,
           runtime=_.get("runtime"))


@signals.task_retry.connect
def on_retry(sender=None, request=None, reason=None, einfo=None, **_):
    _write("task_retry", sender, task_id=request.id, reason=str(reason), retries=request.retries)


@signals.task_revoked.connect
def on_revoked(sender=None, request=None, terminated=None, signum=None, expired=None, **_):
    _write("task_revoked", sender, task_id=request.id, terminated=terminated, signum=signum, expired=expired)


@signals.task_prerun.connect
def on_prerun(sender=None, task_id=None, task=None, args=None, kwargs=None, **_):
    _write("task_prerun", sender, task_id=task_id, args=args)


@signals.task_postrun.connect
def on_postrun(sender=None, task_id=None, retval=None, state=None, **_):
    _write("task_postrun", sender, task_id=task_id, state=state)


@signals.task_received.connect
def on_received(sender=None, request=None, **_):
    _write("task_received", sender, task_id=request.id, task=request.task)


@signals.task_unknown.connect
def on_unknown(sender=None, name=None, id=None, message=None, exc=None, **_):
    _write("task_unknown", sender, name=name, task_id=id, exc=repr(exc))


@signals.task_rejected.connect
def on_rejected(sender=None, message=None, exc=None, **_):
    _write("task_rejected", sender, exc=repr(exc))


@signals.before_task_publish.connect
def on_before_publish(sender=None, headers=None, body=None, routing_key=None, **_):
    headers["trace_id"] = "trace-" + headers["id"]
    _write("before_task_publish", sender, task_id=headers["id"], routing_key=routing_key)


@signals.after_task_publish.connect
def on_after_publish(sender=None, headers=None, **_):
    _write("after_task_publish", sender, task_id=headers["id"])


for _signal in (signals.celeryd_init, signals.worker_init, signals.worker_before_create_process,
                signals.celeryd_after_setup, signals.worker_ready,
                signals.worker_process_init, signals.worker_process_shutdown, signals.worker_shutting_down,
                signals.worker_shutdown, signals.heartbeat_sent, signals.after_setup_logger,
                signals.after_setup_task_logger, signals.beat_init, signals.beat_embedded_init):
    def _receiver(sender=None, _signal=_signal, **_):
        _write(_signal.name, sender)

    _signal.connect(_receiver)


@app.task
def add(x, y):
    return x + y


@app.task
def boom(text):
    raise ValueError(text)


@app.task(bind=True, max_retries=1, default_retry_delay=0.1)
def retry_once(self):
    if self.request.retries == 0:
        raise self.retry(exc=ConnectionError("first attempt"))
    return "second"


@app.task(bind=True)
def trace(self):
    return self.request.headers.get("trace_id")


@app.task
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task(reject_on_worker_lost=False)
def die():
    """Celery's behaviour asked for: a lost process is this task's FAILURE at once."""
    os._exit(3)


@app.task
def die_always():
    """The default: run again after a lost process, until the poison cap dead-letters it."""
    os._exit(3)


@app.task(time_limit=1)
def stuck():
    time.sleep(10)
