"""The global rate limit, as a pool process applies it: each start of a rate-limited task takes a
start slot from the broker's cluster-wide limiter (``Broker.rate_slot``), and a slot in the future
defers the message in the broker to just before it. Mixed into ``consumer.Consumer``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .. import message
from ..config import parse_rate

if TYPE_CHECKING:
    from ..brokers.base import Broker, Delivery
    from ..brokers.clock import BrokerClock
    from ..task import Task
    from .flusher import Flusher


def slot_grace(interval: float) -> float:
    """How late a task may start in its reserved rate-limit slot: a tenth of the interval, at
    most 50 ms. Starts are then never closer together than ``interval`` minus this."""
    return min(interval * 0.1, 0.05)


def slot_lead(interval: float) -> float:
    """How long before its rate-limit slot a deferred message is made ready again."""
    return min(interval * 0.5, 0.1)


class RateLimiter:
    """Start slots from the cluster-wide limiter: none asked for a task without a rate limit."""

    if TYPE_CHECKING:  # the consumer's, set in its __init__ / run()
        broker: Broker
        clock: BrokerClock
        flusher: Flusher
        signing_key: bytes | None
        disable_rate_limits: bool

        def rate_limit_for(self, task: Task[Any, Any]) -> str | int | float | None: ...

    def _rate_limited(self, task: Task[Any, Any], delivery: Delivery, envelope: message.Envelope) -> bool:
        """Ask the cluster-wide limiter for a start slot; a slot in the future defers the message
        to it (in the broker, not here), so the limit holds across every worker.

        A slot reserved earlier (the message was deferred to it) is honoured only if the task
        starts within ``slot_grace(interval)`` of it, by the broker's clock: a message that waited
        behind a busy task, or was given back and fetched again, would otherwise start together
        with the messages whose slots came after its own. The message is made ready a little
        before its slot (``slot_lead``) and waits here for it, so the promote-and-fetch latency
        does not make every deferred start late."""
        if self.disable_rate_limits:
            return False
        interval = parse_rate(self.rate_limit_for(task))
        if interval is None:
            return False
        if envelope.slot is not None:
            late = self.clock.now() - envelope.slot
            if late < 0:  # made ready ahead of its slot on purpose: wait for it
                self._wait_for_slot(min(-late, interval))
                return False
            if late <= slot_grace(interval):
                return False
            envelope.slot = None  # missed: reserve again, like any other start
        wait = self.broker.rate_slot(task.name, interval)
        if wait <= 0.005:
            if wait > 0:
                self._wait_for_slot(wait)
            return False
        envelope.slot = self.clock.now() + wait
        body = message.encode(envelope, signing_key=self.signing_key)
        self.flusher.defer(delivery, body, max(0.0, wait - slot_lead(interval)))
        return True

    def _wait_for_slot(self, seconds: float) -> None:
        """The rate limiter's start slot is this close: wait for it (an asyncio pool process
        delays the start instead, so its other tasks go on)."""
        time.sleep(seconds)
