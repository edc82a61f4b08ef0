"""The worker's side of remote control: reads the control log, runs commands, replies.

Runs as a thread in the supervisor with its own broker connection. Commands that change what
pool processes do (rate and time limits, queues, revocations) are published through the shared
control page (:mod:`.slots`), which pool processes check before each task.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import msgspec

from .. import __version__, message, signing
from ..brokers.base import redact_url
from ..control import (
    COMMAND_MAX_AGE,
    COMMAND_PURPOSE,
    CONTROL_LOG,
    REPLY_TTL,
    describe_body,
    reply_purpose,
    seal,
    stamp_headers_of,
    stamps_revoked,
)
from ..exceptions import SignatureError

if TYPE_CHECKING:
    from .supervisor import Supervisor

logger = logging.getLogger("celeriac.worker")

_encode = msgspec.json.encode
_decode = msgspec.json.decode

SECRET_SETTINGS = ("broker_url", "result_backend", "task_message_signing_key")


class Remote:
    def __init__(self, supervisor: Supervisor) -> None:
        self.sup = supervisor
        self.app = supervisor.app
        self.broker = supervisor.app.new_broker()
        self.stopped = threading.Event()
        self.rate_limits: dict[str, Any] = {}
        self.time_limits: dict[str, list[float | None]] = {}
        self.revoked_version = 0
        self.task_events = bool(supervisor.events)  # enable_events/disable_events turn it at run time
        self.signing_key = self.app.signing_key
        self.seen: dict[str, float] = {}  # signed command id -> until when it is remembered
        self.thread = threading.Thread(target=self._loop, name="remote-control", daemon=True)
        self.position: str | None = None  # the control log's id to follow from

    def start(self) -> None:
        self.publish()
        # Where to follow the log from is read now, before the worker says it is ready: read
        # from the thread, a command sent right after "ready" (a ping) could fall before it.
        try:
            self.position = self.broker.log_last(CONTROL_LOG) or "0"
        except Exception as exc:
            logger.error("remote control: cannot reach the broker: %s", exc)
        self.thread.start()

    def stop(self, wait: float = 3.0) -> None:
        self.stopped.set()
        self.thread.join(wait)
        if not self.thread.is_alive():  # else it is inside a blocking read: the exit ends it
            self.broker.close()

    def publish(self) -> None:
        """Tell pool processes the current overrides through the shared page."""
        self.sup.slots.publish({"rate_limits": self.rate_limits, "time_limits": self.time_limits,
                                "queues": self.sup.queues, "revoked_version": self.revoked_version,
                                "events": self.task_events})

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        position = self.position
        while position is None and not self.stopped.is_set():
            try:  # start from now; following ids from here misses nothing sent while we read
                position = self.broker.log_last(CONTROL_LOG) or "0"
            except Exception as exc:
                logger.error("remote control: cannot reach the broker: %s", exc)
                self.stopped.wait(1.0)
        while not self.stopped.is_set():
            try:
                entries = self.broker.log_read(CONTROL_LOG, position, 100, timeout=1.0)
            except Exception as exc:
                logger.error("remote control: cannot read commands: %s", exc)
                self.stopped.wait(1.0)
                continue
            for entry_id, data in entries:
                position = entry_id
                self._handle(data)

    def _open(self, data: bytes) -> dict[str, Any] | None:
        """The command in ``data``, or None (logged) when it must not run: unsigned, badly signed,
        too old or seen before while a signing key is set; or not a command at all."""
        try:
            signed_at, body = signing.verify(data, self.signing_key, COMMAND_PURPOSE, what="control command")
            msg = _decode(body)
            if not isinstance(msg, dict):
                return None
            if self.signing_key is not None:
                now = time.time()
                signing.check_age(signed_at, COMMAND_MAX_AGE, now, what="control command",
                                  limit="the validity of a control command")
                self.seen = {k: until for k, until in self.seen.items() if until > now}
                command_id = str(msg.get("id"))
                if command_id in self.seen:
                    raise SignatureError(f"control command {command_id} was already run: refused as a replay")
                self.seen[command_id] = max(signed_at, now) + COMMAND_MAX_AGE
            return msg
        except SignatureError as exc:
            logger.error("remote control: refused a command: %s", exc)
        except msgspec.DecodeError:
            pass
        return None

    def _handle(self, data: bytes) -> None:
        msg = self._open(data)
        if msg is None:
            return
        destination = msg.get("destination")
        if destination and self.sup.hostname not in destination:
            return
        command = str(msg.get("command"))
        handler = getattr(self, f"do_{command}", None)
        try:
            reply: Any = handler(**msg.get("arguments", {})) if handler else {"error": f"unknown command {command!r}"}
        except Exception as exc:
            logger.exception("remote control command %s failed", command)
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        if msg.get("reply"):
            try:
                answer = seal(_encode({self.sup.hostname: reply}), self.signing_key, reply_purpose(str(msg["id"])))
                self.broker.log_append(f"reply:{msg['id']}", answer, 100, ttl=REPLY_TTL)
            except Exception as exc:
                logger.error("remote control: cannot reply to %s: %s", command, exc)

    # -- inspection -----------------------------------------------------------------------------
    def do_ping(self) -> dict[str, str]:
        return {"ok": "pong"}

    def _running(self) -> list[dict[str, Any]]:
        out = []
        for pid, index in self.sup.pool_processes():
            running = self.sup.slots.read(index)
            if running is None or "id" not in running.info:
                continue
            info = running.info
            out.append({"id": info["id"], "name": info["name"], "args": info.get("args"),
                        "kwargs": info.get("kwargs"), "time_start": info.get("started"),
                        "hostname": self.sup.hostname, "worker_pid": pid, "acknowledged": not info.get("al"),
                        "delivery_info": {"routing_key": info["q"], "priority": info["p"],
                                          "redelivered": bool(info.get("d"))},
                        "tag": info["tag"]})
        return out

    def do_active(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in task.items() if k != "tag"} for task in self._running()]

    def _not_waiting(self) -> set[str]:
        """Tags of leased messages that are not waiting to run: running, or just finished with
        the ack still to come from the process's flusher."""
        tags = {task["tag"] for task in self._running()}
        for _, index in self.sup.pool_processes():
            ended = self.sup.slots.ended(index)
            if ended is not None and "tag" in ended:
                tags.add(ended["tag"])
        return tags

    def do_reserved(self) -> list[dict[str, Any]]:
        # Asked before and after the broker is: a task that starts or ends while the (several
        # round trips long) broker read runs is never shown waiting.
        busy = self._not_waiting()
        held = self.broker.held(self.sup.incarnation, self.sup.all_queues)
        busy |= self._not_waiting()
        out = []
        for consumer, delivery in held:
            if delivery.tag in busy:
                continue
            request = describe_body(delivery.body, self.app)
            request.update(hostname=self.sup.hostname, consumer=consumer, acknowledged=False,
                           delivery_info={"routing_key": delivery.queue, "priority": delivery.priority,
                                          "redelivered": delivery.redeliveries > 0})
            out.append(request)
        return out

    def do_registered(self) -> list[str]:
        return sorted(name for name in self.app.tasks if not name.startswith("celeriac."))

    def do_stats(self) -> dict[str, Any]:
        processed, failed = self.sup.slots.totals()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "pid": os.getpid(), "hostname": self.sup.hostname, "version": __version__,
            "uptime": round(time.time() - self.sup.started_at, 3),
            "pool": {"implementation": self.sup.pool.name, "max-concurrency": self.sup.concurrency,
                     "processes": sorted({pid for pid, _ in self.sup.pool_processes()}),
                     "max-tasks-per-child": self.sup.max_tasks_per_child,
                     "max-memory-per-child": self.sup.max_memory_per_child},
            "prefetch_count": self.sup.prefetch * self.sup.concurrency,
            "total": {"processed": processed, "failed": failed},
            "broker": {"url": redact_url(self.app.broker_url)},
            "rusage": {"utime": usage.ru_utime + children.ru_utime, "stime": usage.ru_stime + children.ru_stime,
                       "maxrss": usage.ru_maxrss},
            "queues": self.sup.queues,
        }

    def do_active_queues(self) -> list[dict[str, Any]]:
        return [{"name": q, "routing_key": q, "exchange": {"name": q}} for q in self.sup.queues]

    def do_conf(self) -> dict[str, Any]:
        conf = {}
        for key, value in self.app.conf.changes().items():
            if key in SECRET_SETTINGS and value:
                value = redact_url(str(value)) if "url" in key or "backend" in key else "***"
            conf[key] = value if isinstance(value, (str, int, float, bool, list, dict, type(None))) else repr(value)
        return conf

    def do_revoked(self) -> list[str]:
        return sorted(self.app.control.revoked())

    def do_query_task(self, ids: list[str]) -> dict[str, Any]:
        wanted = set(ids)
        return {task["id"]: ["active", task] for task in self.do_active() if task["id"] in wanted}

    # -- steering -------------------------------------------------------------------------------
    def do_revoke(self, task_ids: list[str], terminate: bool = False, signal: str = "SIGTERM") -> dict[str, Any]:
        self.revoked_version += 1
        self.publish()
        terminated = []
        if terminate:
            try:
                signum = _signal_number(signal)
            except ValueError as exc:
                return {"error": f"tasks {', '.join(task_ids)} flagged as revoked, not terminated: {exc}"}
            terminated = self.sup.terminate(set(task_ids), signum)
        return {"ok": f"tasks {', '.join(task_ids)} flagged as revoked"
                      + (f"; terminated {', '.join(terminated)}" if terminated else "")}

    def do_revoke_by_stamped_headers(self, headers: Any, terminate: bool = False,
                                     signal: str = "SIGTERM") -> dict[str, Any]:
        """Consumers reload the stamp revocations (app.control stored them in the broker)."""
        try:
            wanted = stamp_headers_of(headers)
        except ValueError as exc:
            return {"error": str(exc)}
        self.revoked_version += 1
        self.publish()
        if not terminate:
            return {"ok": f"headers {wanted} flagged as revoked, but not terminated"}
        try:
            signum = _signal_number(signal)
        except ValueError as exc:
            return {"error": f"headers {wanted} flagged as revoked, not terminated: {exc}"}
        terminated = self.sup.terminate(self._held_with_stamps(wanted), signum)
        if not terminated:
            return {"ok": f"headers {wanted} were not terminated"}
        return {"ok": f"headers {wanted} revoked; terminated {', '.join(terminated)}"}

    def _held_with_stamps(self, wanted: dict[str, list[Any]]) -> set[str]:
        """Ids of this worker's leased tasks (running ones among them) stamped with a revoked
        value. Read from the messages, here, so the task path never records stamps."""
        ids = set()
        accept, key = frozenset(self.app.conf.accept_content), self.app.signing_key
        for _, delivery in self.broker.held(self.sup.incarnation, self.sup.all_queues):
            try:
                envelope = message.decode(delivery.body, accept=accept, signing_key=key, arguments=False)
            except Exception:
                continue
            stamps = envelope.headers.get("stamps")
            if isinstance(stamps, dict) and stamps_revoked(stamps, wanted) is not None:
                ids.add(envelope.id)
        return ids

    def do_rate_limit(self, task_name: str, rate_limit: Any) -> dict[str, str]:
        if task_name not in self.app.tasks:
            return {"error": f"unknown task {task_name!r}"}
        self.rate_limits[task_name] = rate_limit or None
        self.publish()
        return {"ok": f"new rate limit set successfully: {rate_limit}"}

    def do_time_limit(self, task_name: str, soft: float | None = None, hard: float | None = None) -> dict[str, str]:
        if task_name not in self.app.tasks:
            return {"error": f"unknown task {task_name!r}"}
        self.time_limits[task_name] = [hard, soft]
        self.publish()
        return {"ok": f"time limits set successfully: soft={soft} hard={hard}"}

    def do_add_consumer(self, queue: str) -> dict[str, str]:
        if queue in self.sup.queues:
            return {"ok": f"already consuming from {queue!r}"}
        self.sup.queues.append(queue)
        self.publish()
        return {"ok": f"add consumer {queue}"}

    def do_cancel_consumer(self, queue: str) -> dict[str, str]:
        if queue not in self.sup.queues:
            return {"error": f"not consuming from {queue!r}"}
        if len(self.sup.queues) == 1:
            return {"error": "cannot cancel the last queue; use shutdown"}
        self.sup.queues.remove(queue)
        self.publish()
        return {"ok": f"no longer consuming from {queue}"}

    def do_pool_grow(self, n: int = 1) -> dict[str, str]:
        grown = self.sup.resize(+int(n))
        return {"ok": f"pool will grow to {grown}"}

    def do_pool_shrink(self, n: int = 1) -> dict[str, str]:
        shrunk = self.sup.resize(-int(n))
        return {"ok": f"pool will shrink to {shrunk}"}

    def do_enable_events(self) -> dict[str, str]:
        return self._task_events(True)

    def do_disable_events(self) -> dict[str, str]:
        return self._task_events(False)

    def _task_events(self, on: bool) -> dict[str, str]:
        """Task events only, as Celery's: worker heartbeats/online/offline keep flowing, so
        monitors still see the worker."""
        word = "enabled" if on else "disabled"
        if self.task_events == on:
            return {"ok": f"task events already {word}"}
        self.task_events = on
        self.publish()
        logger.info("task events %s by remote control", word)
        return {"ok": f"task events {word}"}

    def do_autoscale(self, max: int | None = None, min: int | None = None) -> dict[str, str]:
        if self.sup.autoscaler is None:
            raise ValueError("Autoscale not enabled")  # Celery's reply when the worker has no --autoscale
        high, low = self.sup.autoscaler.update(max, min)
        return {"ok": f"autoscale now max={high} min={low}"}

    def do_report(self) -> dict[str, str]:
        from ..utils.report import report

        return {"ok": report(self.app)}

    def do_shutdown(self) -> dict[str, str]:
        self.sup.stop()
        return {"ok": "shutting down"}


def _signal_number(name: str | int) -> int:
    if isinstance(name, int) or str(name).isdigit():
        return int(name)
    text = str(name).upper()
    number = getattr(signal, text if text.startswith("SIG") else f"SIG{text}", None)
    if not isinstance(number, int):
        raise ValueError(f"unknown signal {name!r} (use a name such as SIGTERM or SIGKILL, or a number)")
    return int(number)
