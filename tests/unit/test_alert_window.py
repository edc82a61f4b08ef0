"""The alert window (first alert at once, then one digest per window while a storm lasts) and the
identities that let two dashboards send each message once."""

from __future__ import annotations

from celeriac.dashboard.alerts import GATE_GRACE, Alert, Gate, Message


def alert(i: int, at: float, kind: str = "task-failed") -> Alert:
    return Alert(kind, at, f"id-{i}", f"task {i} failed", {"name": "proj.add" if i % 2 else "proj.mul"})


def gate(window: float = 10.0) -> tuple[Gate, list[Message]]:
    sent: list[Message] = []
    return Gate(window, sent.append), sent


def test_the_first_alert_goes_at_once_and_the_rest_of_its_window_as_one_digest() -> None:
    g, sent = gate()
    for i in range(1000):
        g.add(alert(i, 100.0 + i / 1000), now=1000.0 + i / 1000)
    assert [(m.payload["digest"], m.payload["count"]) for m in sent] == [(False, 1)]
    g.tick(1009.0)
    assert len(sent) == 1  # the window is still open
    g.tick(1010.0 + GATE_GRACE)
    assert [(m.payload["digest"], m.payload["count"]) for m in sent] == [(False, 1), (True, 999)]
    digest = sent[1].payload
    assert len(digest["alerts"]) == 50 and digest["omitted"] == 949
    assert digest["by_name"] == {"proj.add": 500, "proj.mul": 499}


def test_a_lasting_storm_sends_one_digest_per_window_and_a_quiet_window_ends_it() -> None:
    g, sent = gate()
    for second in range(35):  # one alert a second for 35 s
        g.add(alert(second, 100.0 + second), now=1000.0 + second)
        g.tick(1000.0 + second + 0.5)
    g.tick(1060.0)
    assert [m.payload["count"] for m in sent] == [1, 10, 10, 10, 4]  # windows end 1 s late (the grace)
    g.add(alert(99, 200.0), now=1100.0)  # after the quiet window: a new storm, sent at once
    assert sent[-1].payload["digest"] is False and sent[-1].payload["count"] == 1


def test_kinds_have_separate_windows() -> None:
    g, sent = gate()
    g.add(alert(1, 100.0), now=1000.0)
    g.add(alert(2, 100.0, kind="worker-offline"), now=1000.0)
    assert [m.payload["kind"] for m in sent] == ["task-failed", "worker-offline"]


def test_two_dashboards_reading_at_different_times_name_each_message_alike() -> None:
    a, sent_a = gate()
    b, sent_b = gate()
    for i in range(20):
        a.add(alert(i, 100.0 + i / 10), now=1000.0 + i / 10)
        b.add(alert(i, 100.0 + i / 10), now=1000.4 + i / 10)  # the other one reads 0.4 s later
    a.tick(1020.0)
    b.tick(1020.0)
    assert [m.key for m in sent_a] == [m.key for m in sent_b] and len(sent_a) == 2
