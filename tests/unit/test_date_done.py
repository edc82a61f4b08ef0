"""``date_done`` is formatted without datetime on the per-task path (execution.utc_iso): it must
be the very text ``datetime.now(UTC).isoformat()`` gives, whatever the moment."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from celeriac.execution import utc_iso


def _expected(ns: int) -> str:
    second, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(second, UTC).replace(microsecond=rest // 1000).isoformat()


def test_utc_iso_is_isoformat_of_the_same_moment() -> None:
    rng = random.Random(7)
    moments = [0, 999, 1_000, 999_999_999, 1_000_000_000, 1_765_123_456_000_000_000,
               1_765_123_456_000_000_999, 1_765_123_456_999_999_999, 1_765_123_457_000_001_000,
               4_102_444_799_999_999_000]
    moments += [rng.randrange(0, 4_000_000_000 * 10**9) for _ in range(2000)]
    # Runs of moments within one second, then the next: the per-second text must follow.
    base = 1_765_123_456 * 10**9
    moments += [base + k * 250_000_000 + rng.randrange(0, 10**6) for k in range(12)]
    for ns in moments:
        assert utc_iso(ns) == _expected(ns), ns


def test_utc_iso_now_is_between_two_readings_of_the_clock() -> None:
    for _ in range(100):
        before = datetime.now(UTC)
        text = utc_iso()
        after = datetime.now(UTC)
        assert before <= datetime.fromisoformat(text) <= after
        assert text.endswith("+00:00")
