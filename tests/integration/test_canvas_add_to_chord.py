"""Task.add_to_chord with real workers on Redis and SQLite: the body waits for the members a
header task adds while it runs and gets their results, and a worker killed with SIGKILL after
adding them still ends in exactly one call of the body (the re-run adds the same members)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import test_canvas_chord_kill as chord_kill
from canvasapp import grow, grow_lazily, grow_outside, ledger, slow

from celeriac import chord
from celeriac.testing import WorkerProcess, wait_until

# The chord kill tests' fixtures: a worker factory on Redis and on SQLite, and the marks folder.
url, marks, workers, lines = chord_kill.url, chord_kill.marks, chord_kill.workers, chord_kill.lines


def test_the_body_waits_for_added_members_and_gets_their_results(workers: Callable[[str], WorkerProcess],
                                                                 marks: Path) -> None:
    workers("w1")
    result = chord([grow.s(1, 2), slow.s(2, 0.0), grow_lazily.s(3)])(ledger.s("grown"))
    assert result.get(timeout=40) == [1, 2, 3, 100, 101, 1003]
    time.sleep(1)
    assert lines(marks, "ledger") == ["grown [1, 2, 3, 100, 101, 1003]"]
    assert lines(marks, "grow-lazy") == ["Signature"]
    assert grow_outside.delay().get(timeout=10) == "Current task is not member of any chord"


def test_kill_9_after_adding_members_ends_in_exactly_one_callback(workers: Callable[[str], WorkerProcess],
                                                                  marks: Path) -> None:
    victim = workers("victim")
    result = chord([grow.s(1, 2, 30.0), slow.s(2, 0.0)])(ledger.s("killed"))
    wait_until(lambda: lines(marks, "grow-added"), timeout=20, message="the members were added")
    workers("survivor")
    victim.kill()
    assert result.get(timeout=60) == [1, 2, 100, 101]
    time.sleep(3)  # a second call of the body would land by now
    assert lines(marks, "ledger") == ["killed [1, 2, 100, 101]"]
    assert len(lines(marks, "grow-added")) == 2  # the killed header task ran again and added again
