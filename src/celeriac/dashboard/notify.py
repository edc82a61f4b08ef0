"""Where alerts go: a webhook (a JSON POST) and e-mail over SMTP, each retried with backoff.

Each channel sends from a thread of its own, so a webhook that is down delays neither the
e-mail nor the reading of events; a message that still fails after its retries is logged and
dropped (the next alert tries again from scratch).
"""

from __future__ import annotations

import json
import logging
import queue
import smtplib
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from .. import __version__
from ..exceptions import ConfigurationError

logger = logging.getLogger("celeriac.alerts")

BACKOFF_FIRST = 1.0  # seconds before the first retry; doubled each time
BACKOFF_MAX = 60.0
QUEUE_MAX = 1000  # messages waiting for one channel; beyond that new ones are dropped (and logged)


class DeliveryError(Exception):
    """One attempt to deliver failed; ``final`` when trying again cannot help (a 4xx answer)."""

    def __init__(self, message: str, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class Webhook:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"alert_webhook_url must be an http:// or https:// URL, not {url!r}")
        self.url = url
        self.timeout = timeout

    def __str__(self) -> str:
        return f"webhook {self.url.split('?')[0]}"

    def send(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, default=str).encode()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": f"celeriac/{__version__}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                reply.read()
        except urllib.error.HTTPError as exc:
            # A receiver that refuses what it got will refuse it again; one that is busy may not.
            raise DeliveryError(f"{self} answered {exc.code}", final=400 <= exc.code < 500
                                and exc.code not in (408, 425, 429)) from None
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"{self}: {exc}") from None


class Mailer:
    def __init__(self, to: list[str], sender: str, host: str = "localhost", port: int | None = None, *,
                 user: str | None = None, password: str | None = None, starttls: bool = False,
                 use_ssl: bool = False, timeout: float = 10.0) -> None:
        if not to:
            raise ConfigurationError("alert_email_to names no address")
        self.to, self.sender, self.host = to, sender, host
        self.port = port if port is not None else (465 if use_ssl else 25)
        self.user, self.password = user, password
        self.starttls, self.use_ssl, self.timeout = starttls, use_ssl, timeout

    def __str__(self) -> str:
        return f"SMTP {self.host}:{self.port}"

    def send(self, payload: dict[str, Any]) -> None:
        mail = EmailMessage()
        mail["Subject"] = f"[celeriac] {payload['text']}"[:200]
        mail["From"], mail["To"] = self.sender, ", ".join(self.to)
        mail.set_content(email_body(payload))
        try:
            if self.use_ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                        context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.starttls and not self.use_ssl:
                    client.starttls(context=ssl.create_default_context())
                if self.user:
                    client.login(self.user, self.password or "")
                client.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"{self}: login refused ({exc.smtp_code})", final=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{self}: {exc}") from None


def email_body(payload: dict[str, Any]) -> str:
    lines = [str(payload["text"]), ""]
    for alert in payload.get("alerts", []):
        lines.append(f"- {alert['summary']}")
        for key in ("args", "kwargs", "worker", "queue", "reason"):
            if alert.get(key) not in (None, "", "()", "{}"):
                lines.append(f"    {key}: {alert[key]}")
    if payload.get("omitted"):
        lines.append(f"... and {payload['omitted']} more")
    if payload.get("by_name"):
        lines += ["", "By task:"] + [f"  {name}: {n}" for name, n in payload["by_name"].items()]
    return "\n".join(lines) + "\n"


Channel = Webhook | Mailer


class Courier:
    """Sends each message through one channel from its own thread, retrying with backoff.
    ``before_send`` (the claim that makes one dashboard the sender) is asked once per message."""

    def __init__(self, channel: Channel, retries: int, before_send: Callable[[str], bool] | None = None) -> None:
        self.channel = channel
        self.retries = retries
        self.before_send = before_send
        self.sent = 0
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(QUEUE_MAX)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"celeriac-alerts-{type(channel).__name__.lower()}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout)

    def post(self, key: str, payload: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((key, payload))
        except queue.Full:
            logger.error("alerts: %s is behind by %d messages; dropped: %s", self.channel, QUEUE_MAX, payload["text"])

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                return
            key, payload = item
            if self.before_send is not None and not self.before_send(f"{key}:{type(self.channel).__name__}"):
                continue  # another dashboard sends this one
            self.deliver(payload)

    def deliver(self, payload: dict[str, Any]) -> bool:
        delay = BACKOFF_FIRST
        for attempt in range(self.retries + 1):
            try:
                self.channel.send(payload)
                self.sent += 1
                return True
            except DeliveryError as exc:
                if exc.final or attempt == self.retries:
                    logger.error("alerts: could not deliver %r: %s", payload["text"], exc)
                    return False
                logger.warning("alerts: %s; trying again in %g s", exc, delay)
            if self._stop.wait(delay):
                return False
            delay = min(delay * 2, BACKOFF_MAX)
        return False
