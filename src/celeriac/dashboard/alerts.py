"""Alerts from the dashboard process: a task's final failure, a task dead-lettered, a worker gone
offline, a queue deeper or slower than a threshold; sent through notify.py's channels.

A storm costs one message per window, not one per task. The first alert of a kind goes out at
once and opens a window of ``alert_window`` seconds; everything of that kind arriving in it is
sent as one digest when the window closes, and windows follow one another while the storm
lasts; a window with nothing in it ends the storm. A queue or a worker in trouble alerts again
only after ``alert_cooldown`` seconds. All this state lives in memory: a restarted dashboard
starts with none, and it does not page for events more than ``STALE`` seconds old, which it
reads when it catches up on what happened while it was down.

Two dashboards on one cluster read the same events and would each send the same messages. A
message is sent by whichever wins the broker's ``claim`` on its identity: its kind, the time of
the event that began its storm (the same in both, read from the same log) and its window number.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..brokers.base import QueueStats, WorkerRecord
from ..exceptions import BrokerError, ConfigurationError
from ..monitor.state import TaskRecord
from .notify import Channel, Courier, Mailer, Webhook
from .shapes import args_repr

if TYPE_CHECKING:
    from ..brokers.base import Broker

logger = logging.getLogger("celeriac.alerts")

KINDS = ("task-failed", "task-dead-lettered", "worker-offline", "queue-depth", "queue-wait")
LABEL = {"task-failed": "tasks failed", "task-dead-lettered": "tasks dead-lettered",
         "worker-offline": "workers went offline", "queue-depth": "queues over their depth threshold",
         "queue-wait": "queues over their wait threshold"}
STALE = 600.0       # seconds: older events are history, not news
CHECK_EVERY = 2.0   # seconds between looks at the worker registry and the queue depths
GATE_GRACE = 1.0    # seconds a window stays open past its end, for events read a little late
LISTED = 50         # alerts listed one by one in a digest; the rest are counted
TRACEBACK_CHARS = 2000

Event = dict[str, Any]


@dataclass(slots=True)
class Alert:
    kind: str
    time: float          # when it happened (the event's time): the same for every dashboard
    subject: str         # the task id, worker name or queue name
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "time": self.time, "subject": self.subject, "summary": self.summary,
                **self.details}


@dataclass
class Message:
    key: str             # its identity across dashboards (what the claim is on)
    payload: dict[str, Any]


@dataclass
class _Storm:
    began: float         # reading time of its first alert: windows are counted from here
    first: float         # event time of its first alert: part of every message's identity
    window: int = 0
    alerts: list[Alert] = field(default_factory=list)
    count: int = 0
    names: Counter[str] = field(default_factory=Counter)


class Gate:
    """The windows: the first alert of a kind at once, then one digest per window while it lasts.
    Not thread-safe; the :class:`Alerter` holds a lock around it."""

    def __init__(self, window: float, send: Callable[[Message], None]) -> None:
        self.window = window
        self.send = send
        self.storms: dict[str, _Storm] = {}

    def add(self, alert: Alert, now: float) -> None:
        storm = self.storms.get(alert.kind)
        if storm is not None:
            self._roll(alert.kind, storm, now)
            storm = self.storms.get(alert.kind)
        if storm is None:
            self.storms[alert.kind] = _Storm(began=now, first=alert.time)
            self.send(Message(f"{alert.kind}:{alert.time:.6f}:0", {
                "source": "celeriac", "kind": alert.kind, "digest": False, "count": 1, "text": alert.summary,
                "since": alert.time, "until": alert.time, "alerts": [alert.as_dict()], "omitted": 0}))
            return
        storm.count += 1
        storm.names[str(alert.details.get("name") or alert.subject)] += 1
        if len(storm.alerts) < LISTED:
            storm.alerts.append(alert)

    def tick(self, now: float) -> None:
        for kind, storm in list(self.storms.items()):
            self._roll(kind, storm, now)

    def _roll(self, kind: str, storm: _Storm, now: float) -> None:
        while now >= storm.began + (storm.window + 1) * self.window + GATE_GRACE:
            if not storm.count:
                del self.storms[kind]  # a quiet window ends the storm; the next alert goes out at once
                return
            storm.window += 1
            self.send(self._digest(kind, storm))
            storm.alerts, storm.count, storm.names = [], 0, Counter()

    def _digest(self, kind: str, storm: _Storm) -> Message:
        top = ", ".join(f"{name} x{n}" for name, n in storm.names.most_common(5))
        text = f"{storm.count} more {LABEL.get(kind, kind)} in {self.window:g} s: {top}"
        times = [a.time for a in storm.alerts]
        return Message(f"{kind}:{storm.first:.6f}:{storm.window}", {
            "source": "celeriac", "kind": kind, "digest": True, "count": storm.count, "text": text,
            "since": min(times, default=None), "until": max(times, default=None),
            "alerts": [a.as_dict() for a in storm.alerts], "omitted": storm.count - len(storm.alerts),
            "by_name": dict(storm.names.most_common())})


@dataclass(frozen=True)
class Rules:
    kinds: frozenset[str]
    queue_depth: int | None
    queue_wait: float | None
    window: float
    cooldown: float

    @classmethod
    def from_conf(cls, conf: Any) -> Rules:
        kinds = frozenset(conf.alert_on)
        unknown = kinds - set(KINDS)
        if unknown:
            raise ConfigurationError(f"alert_on: unknown kind {sorted(unknown)[0]!r}; choose from {', '.join(KINDS)}")
        if conf.alert_window <= 0 or conf.alert_cooldown < 0:
            raise ConfigurationError("alert_window must be above 0 and alert_cooldown at least 0 seconds")
        return cls(kinds, conf.alert_queue_depth, conf.alert_queue_wait, float(conf.alert_window),
                   float(conf.alert_cooldown))


def channels(conf: Any) -> list[tuple[Channel, int]]:
    """The channels the settings configure, each with its retry count; empty: alerts are off."""
    out: list[tuple[Channel, int]] = []
    if conf.alert_webhook_url:
        out.append((Webhook(conf.alert_webhook_url, float(conf.alert_webhook_timeout)),
                    int(conf.alert_webhook_retries)))
    if conf.alert_email_to:
        to = conf.alert_email_to
        addresses = [a.strip() for a in (to.split(",") if isinstance(to, str) else to) if a.strip()]
        out.append((Mailer(addresses, conf.alert_email_from, conf.alert_smtp_host, conf.alert_smtp_port,
                           user=conf.alert_smtp_user, password=conf.alert_smtp_password,
                           starttls=conf.alert_smtp_starttls, use_ssl=conf.alert_smtp_ssl,
                           timeout=float(conf.alert_smtp_timeout)), int(conf.alert_webhook_retries)))
    return out


class Alerter:
    """Turns events (from the history indexer's thread) and periodic looks at the workers and
    queues (from a thread of its own) into alerts, through the :class:`Gate` to the couriers."""

    def __init__(self, rules: Rules, couriers: Sequence[Courier], broker: Broker, *,
                 lookup: Callable[[str], TaskRecord | None],
                 queue_stats: Callable[[], list[QueueStats]]) -> None:
        self.rules = rules
        self.couriers = list(couriers)
        self.broker = broker
        self.lookup = lookup
        self.queue_stats = queue_stats
        self.gate = Gate(rules.window, self._post)
        self._lock = threading.Lock()
        self._fired: dict[str, float] = {}      # rule key -> reading time it last alerted
        self._alive: dict[str, bool] | None = None  # worker name -> alive, at the last look
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="celeriac-alerts", daemon=True)
        for courier in self.couriers:
            courier.before_send = self.claim

    def start(self) -> None:
        if logger.level == logging.NOTSET:
            # The CLI logs errors only; an alert that cannot get through is worth a warning.
            logger.setLevel(logging.WARNING)
        for courier in self.couriers:
            courier.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for courier in self.couriers:
            courier.stop()

    def claim(self, key: str) -> bool:
        try:
            return self.broker.claim(f"alerts:{key}", self.rules.window * 3 + 60)
        except BrokerError:
            return True  # better twice than never

    def _post(self, message: Message) -> None:
        for courier in self.couriers:
            courier.post(message.key, message.payload)

    def _raise(self, alert: Alert, now: float) -> None:
        if alert.kind in self.rules.kinds:
            with self._lock:
                self.gate.add(alert, now)

    def _cooled(self, key: str, now: float) -> bool:
        last = self._fired.get(key)
        if last is not None and now - last < self.rules.cooldown:
            return False
        self._fired[key] = now
        return True

    # -- from events (the indexer's thread, after each batch is folded) ------------------------
    def observe(self, events: list[Event]) -> None:
        now = time.time()
        wanted: set[str] = {k for k in ("task-failed", "task-dead-lettered") if k in self.rules.kinds}
        if self.rules.queue_wait is not None and "queue-wait" in self.rules.kinds:
            wanted.add("task-received")
        for event in events:
            kind = event.get("type")
            if kind not in wanted:
                continue
            try:
                stamp = float(event.get("timestamp") or now)
            except (TypeError, ValueError):
                stamp = now
            if now - stamp > STALE:
                continue
            record = self.lookup(str(event.get("uuid") or ""))
            if kind == "task-received":
                self._queue_wait(event, record, stamp, now)
            else:
                self._raise(task_alert(str(kind), event, record, stamp), now)

    def _queue_wait(self, event: Event, record: TaskRecord | None, stamp: float, now: float) -> None:
        limit = self.rules.queue_wait
        sent = event.get("sent") or (record.sent if record is not None else None)
        if limit is None or not isinstance(sent, int | float):
            return
        eta = event.get("eta")
        # A delayed task waits from when it was due, not from when it was sent.
        waited = stamp - max(float(sent), float(eta) if isinstance(eta, int | float) else 0.0)
        queue = str(event.get("queue") or "")
        if waited > limit and self._cooled(f"queue-wait:{queue}", now):
            # The identity rounds the time to the cooldown, so two dashboards name it alike.
            self._raise(Alert("queue-wait", _bucket(stamp, self.rules.cooldown), queue,
                              f"Queue {queue}: a task waited {waited:.1f} s for a worker (threshold {limit:g} s)",
                              {"queue": queue, "wait": round(waited, 3), "threshold": limit,
                               "task_id": event.get("uuid"), "name": event.get("name")}), now)

    # -- from looks at the registry and the queues (this module's thread) ----------------------
    def _run(self) -> None:
        next_check = 0.0
        while not self._stop.wait(0.5):
            now = time.time()
            with self._lock:
                self.gate.tick(now)
            if time.monotonic() < next_check:
                continue
            next_check = time.monotonic() + CHECK_EVERY
            try:
                self.check(now)
            except BrokerError as exc:
                logger.warning("alerts: cannot look at workers and queues: %s", exc)
            except Exception:
                logger.exception("alerts: a check failed")

    def check(self, now: float) -> None:
        if "worker-offline" in self.rules.kinds:
            self._workers(self.broker.workers(), now)
        if "queue-depth" in self.rules.kinds and self.rules.queue_depth is not None:
            for stats in self.queue_stats():
                depth = stats.ready_total
                if depth > self.rules.queue_depth and self._cooled(f"queue-depth:{stats.name}", now):
                    self._raise(Alert("queue-depth", _bucket(now, self.rules.cooldown), stats.name,
                                      f"Queue {stats.name} holds {depth} ready messages (threshold "
                                      f"{self.rules.queue_depth})",
                                      {"queue": stats.name, "depth": depth, "threshold": self.rules.queue_depth,
                                       "delayed": stats.delayed, "unacked": stats.unacked, "dead": stats.dead}), now)

    def _workers(self, registry: list[WorkerRecord], now: float) -> None:
        latest: dict[str, WorkerRecord] = {}
        for record in registry:  # a restarted worker has a record per incarnation: the newest counts
            if record.name not in latest or record.last_seen > latest[record.name].last_seen:
                latest[record.name] = record
        alive = {name: r.alive for name, r in latest.items()}
        before, self._alive = self._alive, alive
        if before is None:
            return  # the first look: a worker already gone before the dashboard started is old news
        for name, was_alive in before.items():
            if was_alive and not alive.get(name, False):
                last = latest[name].last_seen if name in latest else now
                if self._cooled(f"worker-offline:{name}", now):
                    how = "stopped" if name not in latest else "stopped heartbeating"
                    self._raise(Alert("worker-offline", last, name, f"Worker {name} went offline ({how})",
                                      {"worker": name, "last_seen": last}), now)


def task_alert(kind: str, event: Event, record: TaskRecord | None, stamp: float) -> Alert:
    task_id = str(event.get("uuid") or "")
    name = event.get("name") or (record.name if record is not None else None)
    details: dict[str, Any] = {
        "task_id": task_id, "name": name,
        # The worker's reprs, already redacted by task_redact_args; never the JSON call.
        "args": args_repr(record.args) if record is not None else None,
        "kwargs": record.kwargs if record is not None else None,
        "worker": event.get("hostname") or (record.worker if record is not None else None),
        "queue": record.queue if record is not None else event.get("queue"),
        "retries": record.retries if record is not None else None,
    }
    if kind == "task-failed":
        exception = event.get("exception") or (record.exception if record is not None else None)
        traceback = str(event.get("traceback") or "")
        details.update(exception=exception, traceback=traceback[-TRACEBACK_CHARS:] or None)
        summary = f"Task {name}[{task_id}] failed: {exception}"
    else:
        reason = event.get("reason")
        details.update(reason=reason)
        summary = f"Task {name or '?'}[{task_id}] was dead-lettered: {reason}"
    return Alert(kind, stamp, task_id, summary, details)


def _bucket(stamp: float, size: float) -> float:
    return math.floor(stamp / size) * size if size > 0 else stamp


def from_app(app: Any, lookup: Callable[[str], TaskRecord | None],
             queue_stats: Callable[[], list[QueueStats]]) -> Alerter | None:
    """The app's alerter, or None when no channel is configured."""
    found = channels(app.conf)
    if not found:
        return None
    couriers = [Courier(channel, retries) for channel, retries in found]
    return Alerter(Rules.from_conf(app.conf), couriers, app.new_broker(), lookup=lookup, queue_stats=queue_stats)
