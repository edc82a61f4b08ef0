"""A rate-limit slot is honoured only at its time: late starts reserve again (issue 10, finding 7)."""

from __future__ import annotations

import itertools

from conftest import read_marks


def test_rate_limited_starts_stay_spaced_when_their_slots_pass_while_every_worker_is_busy(
        app, start_worker, marks):
    """'2/s' across two workers: the deferred messages come due while both workers run a 3 s
    task, then wait together in the queue; the starts must still be 0.5 s apart."""
    import coreapp

    start_worker("-c", "1", "--prefetch-multiplier", "1", name="a")
    start_worker("-c", "1", "--prefetch-multiplier", "1", name="b")
    results = [coreapp.paced.delay(i) for i in range(8)]
    # Due once the paced batch has been deferred; they keep both workers busy past most slots.
    busy = [coreapp.sleep.apply_async((3, f"busy{i}"), countdown=0.3) for i in range(2)]
    assert sorted(r.get(timeout=60) for r in results) == list(range(8))
    for one in busy:
        one.get(timeout=30)
    starts = sorted(float(line.split()[1]) for line in read_marks(marks, "paced"))
    assert len(starts) == 8
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(starts)]
    # 0.5 s apart, less the slot's 50 ms grace and a little jitter between check and mark.
    assert min(gaps) >= 0.4, gaps
