"""The broker's clock, read locally: ``time.time()`` plus an offset measured now and then.

Times that several machines compare (a task's ``expires``, a rate-limit slot) are judged by the
broker's clock, which every producer and worker shares, rather than by each host's own. Asking
the broker on every task would cost a round trip per task, so the offset is measured once and
again every ``refresh`` seconds; between two measurements the local clock carries it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..exceptions import BrokerError

if TYPE_CHECKING:
    from .base import Broker


class BrokerClock:
    def __init__(self, broker: Broker, refresh: float = 60.0) -> None:
        self.broker = broker
        self.refresh = refresh
        self.offset = 0.0
        self._measured = float("-inf")  # time.monotonic() of the last measurement

    def now(self) -> float:
        """The broker's time, in seconds since the epoch."""
        if time.monotonic() - self._measured >= self.refresh:
            self.measure()
        return time.time() + self.offset

    def measure(self) -> None:
        """Ask the broker for its time; keep the last offset if it cannot answer."""
        self._measured = time.monotonic()
        try:
            before = time.time()
            remote = self.broker.now()
            after = time.time()
        except BrokerError:
            return
        # The reply was made somewhere within the round trip: assume its middle.
        self.offset = remote - (before + after) / 2
