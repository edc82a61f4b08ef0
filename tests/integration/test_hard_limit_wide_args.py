"""Hard time limits hold whatever the task's arguments look like (issue 10, finding 8)."""

from __future__ import annotations

import time

import pytest

from celeriac.exceptions import RemoteTaskError


def test_hard_limit_kills_a_task_whose_shown_arguments_are_4_kb_of_emoji(app, start_worker, marks):
    """1,000 emoji are ~4 KB in UTF-8: the slot must still be readable, so the limit holds."""
    import coreapp

    start_worker("-c", "1")
    sent = time.monotonic()
    result = coreapp.sleep.apply_async((6, "\U0001F600" * 1000), time_limit=2)
    with pytest.raises(RemoteTaskError, match="TimeLimitExceeded"):
        result.get(timeout=15)
    took = time.monotonic() - sent
    assert took < 4.5, f"killed after {took:.1f}s, the limit was 2 s"
    assert (marks / "finished").exists() is False
