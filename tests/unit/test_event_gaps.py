"""A reader that falls behind the capped event log finds out, instead of carrying on as if the log
were whole: on each broker the log really trims (memory, SQLite, a real redis-server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import events
from celeriac.brokers import from_url
from celeriac.brokers.base import Broker
from celeriac.monitor.history import History
from celeriac.monitor.indexer import Indexer
from celeriac.monitor.reader import FROM_START, EventReader, Gap, before
from celeriac.monitor.state import TaskRecord


@pytest.fixture(params=["memory", "sqlite", "redis"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    if request.param == "memory":
        url = f"memory://gaps-{uuid.uuid4().hex}"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/broker.db"
    else:
        url = request.getfixturevalue("redis_url")
    found = from_url(url)
    try:
        yield found
    finally:
        found.close()


def append(broker: Broker, n: int, maxlen: int, start: int = 0) -> list[str]:
    # Redis trims only whole nodes with MAXLEN ~; a node of 100 entries is what it keeps past the cap.
    return [broker.log_append(events.EVENT_LOG, events.event("task-sent", uuid=f"t{i}", timestamp=float(i)), maxlen)
            for i in range(start, start + n)]


def test_before_sorts_just_before_each_id_form() -> None:
    assert before("1700000000000-5") == "1700000000000-4"
    assert before("1700000000000-0") == f"1699999999999-{2**64 - 1}"
    assert before("0000000000000042") == "0000000000000041"
    assert before("0") is None and before("0-0") is None and before("opaque") is None


def test_a_reader_that_kept_up_finds_no_gap(broker: Broker) -> None:
    gaps: list[Gap] = []
    reader = EventReader(broker, FROM_START, count=50, on_gap=gaps.append)
    for round in range(5):
        append(broker, 40, 60, start=round * 40)
        assert [e["uuid"] for _, e in reader.read()] == [f"t{round * 40 + i}" for i in range(40)]
    assert reader.read(0.05) == []
    assert gaps == []


def test_a_trim_past_the_position_is_a_gap_dated_by_the_events_around_it(broker: Broker) -> None:
    gaps: list[Gap] = []
    append(broker, 10, 1000)
    reader = EventReader(broker, FROM_START, on_gap=gaps.append)
    assert len(reader.read()) == 10
    position = reader.position
    assert position is not None
    append(broker, 1000, 150, start=10)  # trims far past t9, the last entry read
    read = [e["uuid"] for _, e in reader.read()]
    assert read and read[-1] == "t1009" and "t10" not in read
    first = int(read[0][1:])
    assert len(gaps) == 1 and reader.gaps == gaps
    gap = gaps[0]
    assert (gap.after, gap.since, gap.to) == (position, 9.0, float(first))
    if broker.__class__.__name__.startswith("SQLite"):
        assert gap.entries == first - 10  # t10 .. t(first-1)
    else:  # ids that do not count entries: no number rather than a wrong one
        assert gap.entries is None
    # Reading on from after the gap: intact again.
    append(broker, 5, 150, start=1010)
    assert [e["uuid"] for _, e in reader.read()] == [f"t{i}" for i in range(1010, 1015)]
    assert len(gaps) == 1


def test_a_gap_is_seen_by_a_reader_that_was_waiting_when_the_trim_happened(broker: Broker) -> None:
    gaps: list[Gap] = []
    append(broker, 3, 1000)
    reader = EventReader(broker, FROM_START, on_gap=gaps.append)
    reader.read()
    append(broker, 600, 150, start=3)
    reader.read(0.5)
    assert len(gaps) == 1 and gaps[0].since == 2.0


def test_the_indexer_stores_a_gap_once_and_finds_one_left_while_it_was_stopped(broker: Broker, tmp_path: Path,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    history = History(str(tmp_path / "history.db"))
    append(broker, 5, 1000)
    indexer = Indexer(broker, history, wait=0.05)
    reader = EventReader(broker, indexer.start_position(), on_gap=indexer._on_gap)
    while indexer.step(reader):
        pass
    assert history.gap_totals() == (0, 0) and history.cursor == reader.position
    # The dashboard is down while the log turns over past its stored position.
    append(broker, 700, 150, start=5)
    with caplog.at_level("WARNING", logger="celeriac.monitor"):
        restarted = Indexer(broker, history, wait=0.05)
        reader = EventReader(broker, restarted.start_position(), on_gap=restarted._on_gap,
                             last_time=history.last_event_time())
        while restarted.step(reader):
            pass
    warnings = [r for r in caplog.records if "dropped unread" in r.getMessage()]
    assert len(warnings) == 1
    assert history.gap_totals()[0] == 1
    [gap] = history.gaps()
    assert gap.since == 4.0 and gap.to is not None and gap.to > 4.0
    history.close()


def test_a_reader_slower_than_the_writers_warns_and_checks_the_store_once_per_quiet_spell(
        broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    history = History(str(tmp_path / "history.db"))
    checked: list[int] = []

    def repair(records: list[TaskRecord]) -> list[TaskRecord]:
        checked.append(len(records))
        return []

    indexer = Indexer(broker, history, wait=0.05, repair=repair)
    append(broker, 5, 1000)
    reader = EventReader(broker, indexer.start_position(), on_gap=indexer._on_gap)
    while indexer.step(reader):
        pass
    with caplog.at_level("WARNING", logger="celeriac.monitor"):
        for round in range(3):
            append(broker, 700, 150, start=5 + 700 * round)
            while indexer.step(reader):
                pass
    assert history.gap_totals()[0] == 3 and len(history.gaps()) == 3
    assert len([r for r in caplog.records if "dropped unread" in r.getMessage()]) == 1
    assert len(checked) == 1 and checked[0] > 0
    history.close()


def test_follow_tells_on_gap_and_the_dump_says_so_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    from celeriac.cli.events_view import _say_gap
    from celeriac.monitor import follow

    broker = from_url(f"memory://gaps-{uuid.uuid4().hex}")
    append(broker, 3, 1000)
    gaps: list[Gap] = []
    batches = follow(broker, FROM_START, wait=0.01, on_gap=gaps.append)
    assert len(next(batches)) == 3
    append(broker, 50, 10, start=3)
    assert [e["uuid"] for e in next(batches)] == [f"t{i}" for i in range(43, 53)]
    assert len(gaps) == 1 and gaps[0].since == 2.0 and gaps[0].to == 43.0
    _say_gap(gaps[0])
    assert "events were lost after entry" in capsys.readouterr().err
    broker.close()


@pytest.mark.parametrize("broker", ["memory", "sqlite"], indirect=True)
def test_a_trim_of_only_the_entry_last_read_is_no_gap(broker: Broker) -> None:
    gaps: list[Gap] = []
    append(broker, 10, 10)
    reader = EventReader(broker, FROM_START, on_gap=gaps.append)
    assert len(reader.read()) == 10
    append(broker, 10, 10, start=10)  # t0 .. t9 trimmed, t9 the last entry read: nothing unread lost
    assert [e["uuid"] for _, e in reader.read()] == [f"t{i}" for i in range(10, 20)]
    assert gaps == []
    append(broker, 11, 10, start=20)  # now t20 goes unread: a gap
    assert [e["uuid"] for _, e in reader.read()] == [f"t{i}" for i in range(21, 31)]
    assert len(gaps) == 1 and (gaps[0].since, gaps[0].to) == (19.0, 21.0)
    if broker.__class__.__name__.startswith("SQLite"):
        assert gaps[0].entries == 1


def test_follows_only_where_no_id_can_sort_between() -> None:
    from celeriac.monitor.reader import follows

    assert follows("1700000000000-6", "1700000000000-5")
    assert not follows("1700000000000-7", "1700000000000-5")
    assert not follows("1700000000001-0", "1700000000000-5")  # the next, or not: cannot tell
    assert follows("0000000000000042", "0000000000000041") and not follows("0000000000000043", "0000000000000041")
    assert not follows("opaque", "0000000000000041")
