"""Flusher.barrier: set once everything handed over before it is written, however busy the
flusher stays afterwards (the asyncio pool's reconcile depends on it)."""

from __future__ import annotations

import uuid

from celeriac import Celery
from celeriac.worker.flusher import Flusher


def test_a_barrier_is_set_after_the_acks_before_it_and_not_held_back_by_later_work() -> None:
    name = f"memory://barrier-{uuid.uuid4().hex}"
    app = Celery("barrier", broker=name, backend=name)
    broker = app.new_broker()
    flusher = Flusher(app, "w#1/1-0", ["q"])
    try:
        for i in range(50):
            broker.enqueue("q", f"m{i}".encode())
        deliveries = broker.fetch(["q"], "w#1/1-0", 50, 0)
        assert len(deliveries) == 50
        for d in deliveries[:40]:
            flusher.finish(d, [])
        written = flusher.barrier()
        for d in deliveries[40:]:  # handed over after the barrier: it need not wait for these
            flusher.finish(d, [])
        assert written.wait(10)
        # Everything before the barrier is acked: only what came after may still be leased.
        assert broker.holding("w#1/1-0", deliveries[:40]) == []
    finally:
        flusher.close()
        broker.close()
        app.close()
