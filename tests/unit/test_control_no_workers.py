"""Inspect and ping answer at once when the worker registry knows no live worker, instead of
waiting out their timeout for replies nobody will send."""

from __future__ import annotations

import time

from celeriac import Celery


def test_inspect_with_no_workers_does_not_wait_for_its_timeout() -> None:
    app = Celery("nobody", broker="memory://")
    try:
        started = time.monotonic()
        assert app.control.inspect(timeout=5).active() is None
        assert app.control.ping(timeout=5) == []
        assert app.control.inspect(destination="w1@nowhere", timeout=5).stats() is None
        assert time.monotonic() - started < 1.0
    finally:
        app.close()
