"""Judges one row from what was written down: the producer's log, the tasks' ledger, the faults
the harness inflicted (which processes it killed or paused, and when) and the stored results.

- attempted / acknowledged: sends tried / sends the producer was told succeeded.
- lost: acknowledged, but never ended (for a poison task: never recorded as failed either); a
  task that ended only in a process killed within ``FLUSH_WINDOW`` after counts as ended only
  if its result was stored.
- unexpected: ran, but the producer was never told it was accepted.
- duplicates: starts beyond the first. A start is *excused* when its process was killed or
  paused while the task ran (or the task itself kills its process); only excused ones may repeat.
- overwritten: the stored result is not the one of the attempt that ended last among those not
  excused (a stale attempt replaced it), or a task that ended is stored as anything but SUCCESS.
- missing: ended (not in a killed process), yet no result is stored.
- recovery: seconds from the last fault to the last acknowledged task's end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from faults.ledger import Attempt, Ledger


@dataclass
class Producer:
    """What the producer was told: ``sent`` ids (acknowledged) and ``failed`` ids with the error."""

    sent: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def send(self, send: Callable[[], None], task_id: str) -> bool:
        try:
            send()
        except Exception as exc:
            self.failed[task_id] = f"{type(exc).__name__}: {exc}"[:200]
            return False
        self.sent[task_id] = time.monotonic()
        return True

    @property
    def attempted(self) -> int:
        return len(self.sent) + len(self.failed)


FLUSH_WINDOW = 1.0


@dataclass
class Faults:
    kills: list[tuple[float, frozenset[int]]] = field(default_factory=list)
    pauses: list[tuple[float, float, frozenset[int]]] = field(default_factory=list)
    # (moment, seconds): the broker restarted without the writes it acknowledged in the
    # ``seconds`` before ``moment`` (appendfsync everysec), so acks of tasks that ended then
    # were lost with them, and those tasks run again.
    lost_writes: list[tuple[float, float]] = field(default_factory=list)
    first: float | None = None
    last: float | None = None

    def note(self, moment: float) -> None:
        self.first = moment if self.first is None else self.first
        self.last = moment

    def killed(self, pids: frozenset[int], moment: float | None = None) -> None:
        moment = time.monotonic() if moment is None else moment
        self.kills.append((moment, pids))
        self.note(moment)

    def paused(self, pids: frozenset[int], began: float, ended: float) -> None:
        self.pauses.append((began, ended, pids))
        self.note(ended)

    def excused(self, attempt: Attempt) -> bool:
        """Was the process running this attempt killed or paused while it ran? A task that ended
        up to ``FLUSH_WINDOW`` before counts as running: its ack may not have been written yet."""
        def hit(moment: float, pids: frozenset[int]) -> bool:
            return (attempt.pid in pids and attempt.start <= moment
                    and (attempt.end is None or attempt.end >= moment - FLUSH_WINDOW))

        return (any(hit(moment, pids) for moment, pids in self.kills)
                or any(hit(began, pids) for began, _, pids in self.pauses)
                or any(attempt.start <= moment and attempt.end is not None and attempt.end >= moment - window
                       for moment, window in self.lost_writes))


@dataclass
class Outcome:
    row: str
    side: str
    lease: str
    attempted: int = 0
    acknowledged: int = 0
    lost: int = 0
    unexpected: int = 0
    duplicates: int = 0
    unexcused: int = 0
    overwritten: int = 0
    missing: int = 0              # ended, but no result was ever stored
    recovery: float | None = None
    restarts: int | None = None   # pool processes born after the first ones
    extra: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    error: str | None = None      # the row could not run to the end

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None

    def bound(self, ok: bool, why: str) -> None:
        if not ok:
            self.failures.append(why)


def judge(outcome: Outcome, producer: Producer, ledger: Ledger, faults: Faults,
          results: Callable[[str], tuple[str, Any]], *, crashing: Iterable[str] = (),
          raw: Iterable[str] = (), check_results: bool = True) -> Outcome:
    crashing, raw = set(crashing), set(raw)
    for task_id in crashing:  # a poison task kills its own process the moment it runs
        for attempt in ledger.attempts.get(task_id, []):
            faults.kills.append((attempt.start, frozenset({attempt.pid})))
    acked = set(producer.sent)
    outcome.attempted = producer.attempted
    outcome.acknowledged = len(acked)
    ended = ledger.ended_ids()
    # A task that ended only in a process killed right after (its result and ack maybe unwritten)
    # is done only if its result was stored; otherwise it must run again, or it is lost.
    unsure = {t for t in acked & ended
              if all(a.end is None or faults.excused(a) for a in ledger.attempts[t])}
    ended -= {t for t in unsure if results(t)[0] != "SUCCESS"}
    lost = acked - ended
    for task_id in lost & crashing:
        if results(task_id)[0] == "FAILURE":
            lost.discard(task_id)
    outcome.lost = len(lost)
    if lost:
        outcome.extra["lost ids (first 5)"] = sorted(lost)[:5]
    outcome.unexpected = len(set(ledger.attempts) - acked - raw)
    for task_id, runs in ledger.attempts.items():
        extra = len(runs) - 1
        if extra <= 0:
            continue
        outcome.duplicates += extra
        excused = len(runs) if task_id in crashing else sum(1 for a in runs if faults.excused(a))
        outcome.unexcused += max(0, extra - excused)
    if check_results:
        replaced = []
        for task_id in sorted(acked & ended - crashing):
            stored = results(task_id)
            if stored[0] in ("PENDING", "STARTED"):
                outcome.missing += 1
            elif _overwritten(ledger.attempts[task_id], faults, stored):
                replaced.append(f"{task_id}: stored {stored[0]} {stored[1]!r}, ran "
                                + ",".join(f"{a.token}{'' if a.end else '(no end)'}{'*' if faults.excused(a) else ''}"
                                           for a in ledger.attempts[task_id]))
        outcome.overwritten = len(replaced)
        if replaced:
            outcome.extra["overwritten (first 3; * excused)"] = replaced[:3]
    if not lost and faults.last is not None:
        last_end = ledger.last_end(acked)
        if last_end is not None:
            outcome.recovery = max(0.0, last_end - faults.last)
    outcome.bound(outcome.lost == 0, f"lost {outcome.lost} acknowledged task(s)")
    outcome.bound(outcome.unexcused == 0, f"{outcome.unexcused} duplicate execution(s) of tasks whose process "
                                          "was neither killed nor paused")
    outcome.bound(outcome.overwritten == 0, f"{outcome.overwritten} result(s) overwritten by a stale attempt")
    outcome.bound(outcome.missing == 0, f"{outcome.missing} task(s) ended but their result was never stored")
    outcome.bound(outcome.unexpected == 0, f"{outcome.unexpected} task(s) ran that no producer was told were sent")
    return outcome


def _overwritten(runs: list[Attempt], faults: Faults, stored: tuple[str, Any]) -> bool:
    done = [a for a in runs if a.end is not None]
    legit = [a for a in done if not faults.excused(a)] or done
    expected = max(legit, key=lambda a: a.end or 0.0).token
    state, value = stored
    return state != "SUCCESS" or value != expected
