"""crontab and interval schedules: Celery's syntax, next runs in a zone, DST, and bad input."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import celeriac
from celeriac.beat.entry import parse
from celeriac.exceptions import ConfigurationError
from celeriac.schedules import as_schedule, crontab, from_dict, schedule, solar, zone

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MOSCOW = ZoneInfo("Europe/Moscow")


def runs(sched, start: datetime, n: int, tz=UTC) -> list[str]:
    """The next ``n`` runs after ``start``, as local ISO times with their offsets."""
    t = start.timestamp()
    out = []
    for _ in range(n):
        t = sched.next_after(t, tz)
        out.append(datetime.fromtimestamp(t, sched.zone(tz)).isoformat(timespec="minutes"))
    return out


# -- parsing ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "expression", "words"), [
    ({}, "* * * * *", "every minute"),
    ({"minute": "*/5"}, "*/5 * * * *", "every 5 minutes"),
    ({"minute": "*/15"}, "*/15 * * * *", "every 15 minutes"),
    ({"minute": 0}, "0 * * * *", "every hour"),
    ({"minute": 30}, "30 * * * *", "every hour at :30"),
    ({"hour": 3, "minute": 0}, "0 3 * * *", "at 03:00 every day"),
    ({"hour": 0, "minute": 0}, "0 0 * * *", "at 00:00 every day"),
    ({"minute": 0, "hour": "*/3"}, "0 */3 * * *", "every 3 hours at :00"),
    ({"minute": 0, "hour": [0, 12]}, "0 0,12 * * *", "at 00:00 and 12:00 every day"),
    ({"minute": 0, "hour": {9, 17}}, "0 9,17 * * *", "at 09:00 and 17:00 every day"),
    ({"minute": "*/10", "hour": "9-17"}, "*/10 9-17 * * *", "every 10 minutes from 09:00 to 17:59"),
    ({"minute": 0, "hour": 9, "day_of_week": "mon-fri"}, "0 9 * * mon-fri", "at 09:00 on Mon-Fri"),
    ({"minute": 0, "hour": 9, "day_of_week": "sun"}, "0 9 * * sun", "at 09:00 on Sunday"),
    ({"minute": 0, "hour": 9, "day_of_week": "Saturday,sunday"}, "0 9 * * sat,sun", "at 09:00 on weekends"),
    ({"minute": 0, "hour": 9, "day_of_week": "1,3,5"}, "0 9 * * 1,3,5", "at 09:00 on Mon, Wed and Fri"),
    ({"minute": 0, "hour": 0, "day_of_month": 1}, "0 0 1 * *", "at 00:00 on day 1 of the month"),
    ({"minute": 0, "hour": 0, "day_of_month": "1-7", "day_of_week": "mon"}, "0 0 1-7 * mon",
     "at 00:00 on Monday if on days 1-7 of the month"),
    ({"minute": 0, "hour": 0, "day_of_month": 11, "month_of_year": 5}, "0 0 11 5 *",
     "at 00:00 on day 11 of the month in May"),
    ({"minute": "1,13,30-45/5", "hour": "0,8-17/2"}, "1,13,30-45/5 0,8-17/2 * * *",
     "cron '1,13,30-45/5 0,8-17/2 * * *'"),
    ({"minute": 0, "hour": 7, "tz": "Europe/Moscow"}, "0 7 * * *", "at 07:00 every day (Europe/Moscow)"),
])
def test_crontab_reads_celery_syntax_and_says_it_in_words(kwargs, expression, words) -> None:
    cron = crontab(**kwargs)
    assert cron.expression == expression
    assert cron.human() == words == str(cron)


def test_crontab_exposes_fields_as_sets_like_celery() -> None:
    cron = crontab(minute="*/15", hour="9-11", day_of_week="sun,sat")
    assert cron.minute == {0, 15, 30, 45}
    assert cron.hour == {9, 10, 11}
    assert cron.day_of_week == {0, 6}
    assert cron.day_of_month == set(range(1, 32))
    assert crontab(minute=0) == crontab(minute="0") and crontab(minute=0) != crontab(minute=1)


def test_crontab_and_schedule_are_importable_as_from_celery() -> None:
    assert celeriac.crontab is crontab and celeriac.schedule is schedule


# -- next runs --------------------------------------------------------------------------------

@pytest.mark.parametrize(("cron", "tz", "start", "expected"), [
    # plain days, in UTC
    (crontab(minute="*/15"), UTC, datetime(2024, 5, 1, 10, 7, tzinfo=UTC),
     ["2024-05-01T10:15+00:00", "2024-05-01T10:30+00:00", "2024-05-01T10:45+00:00", "2024-05-01T11:00+00:00"]),
    (crontab(minute=0), UTC, datetime(2024, 5, 1, 23, 30, tzinfo=UTC),
     ["2024-05-02T00:00+00:00", "2024-05-02T01:00+00:00"]),
    (crontab(hour=3, minute=0), UTC, datetime(2024, 5, 1, 3, 0, tzinfo=UTC),  # strictly after
     ["2024-05-02T03:00+00:00", "2024-05-03T03:00+00:00"]),
    (crontab(hour=0, minute=0, day_of_week="mon-fri"), UTC, datetime(2024, 5, 3, 12, tzinfo=UTC),  # a Friday
     ["2024-05-06T00:00+00:00", "2024-05-07T00:00+00:00"]),
    # both day fields must match, as in Celery (cron would OR them)
    (crontab(hour=0, minute=0, day_of_month="1-7", day_of_week="mon"), UTC, datetime(2024, 5, 1, tzinfo=UTC),
     ["2024-05-06T00:00+00:00", "2024-06-03T00:00+00:00", "2024-07-01T00:00+00:00"]),
    (crontab(hour=0, minute=0, day_of_month=29, month_of_year=2), UTC, datetime(2024, 3, 1, tzinfo=UTC),
     ["2028-02-29T00:00+00:00"]),
    # a zone without DST: Moscow is UTC+3 all year
    (crontab(hour=0, minute=0), MOSCOW, datetime(2024, 6, 1, 12, tzinfo=UTC),
     ["2024-06-02T00:00+03:00", "2024-06-03T00:00+03:00"]),
    # Berlin springs forward 2024-03-31 02:00 -> 03:00: 02:30 does not exist that day
    (crontab(hour=2, minute=30), BERLIN, datetime(2024, 3, 29, 12, tzinfo=BERLIN),
     ["2024-03-30T02:30+01:00", "2024-03-31T03:00+02:00", "2024-04-01T02:30+02:00"]),
    (crontab(minute=30), BERLIN, datetime(2024, 3, 31, 0, 10, tzinfo=BERLIN),
     ["2024-03-31T00:30+01:00", "2024-03-31T01:30+01:00", "2024-03-31T03:30+02:00", "2024-03-31T04:30+02:00"]),
    (crontab(minute="*/30", hour="1-3"), BERLIN, datetime(2024, 3, 31, 0, 10, tzinfo=BERLIN),
     ["2024-03-31T01:00+01:00", "2024-03-31T01:30+01:00", "2024-03-31T03:00+02:00", "2024-03-31T03:30+02:00",
      "2024-04-01T01:00+02:00"]),
    # Berlin falls back 2024-10-27 03:00 -> 02:00: 02:30 happens twice that day
    (crontab(hour=2, minute=30), BERLIN, datetime(2024, 10, 25, 12, tzinfo=BERLIN),
     ["2024-10-26T02:30+02:00", "2024-10-27T02:30+02:00", "2024-10-28T02:30+01:00"]),
    (crontab(minute=30), BERLIN, datetime(2024, 10, 27, 0, 10, tzinfo=BERLIN),
     ["2024-10-27T00:30+02:00", "2024-10-27T01:30+02:00", "2024-10-27T02:30+02:00", "2024-10-27T02:30+01:00",
      "2024-10-27T03:30+01:00"]),
    # New York: forward 2024-03-10 02:00 -> 03:00, back 2024-11-03 02:00 -> 01:00
    (crontab(minute=0), NEW_YORK, datetime(2024, 3, 10, 0, 30, tzinfo=NEW_YORK),
     ["2024-03-10T01:00-05:00", "2024-03-10T03:00-04:00", "2024-03-10T04:00-04:00"]),
    (crontab(hour=2, minute=15), NEW_YORK, datetime(2024, 3, 9, 12, tzinfo=NEW_YORK),
     ["2024-03-10T03:00-04:00", "2024-03-11T02:15-04:00"]),
    (crontab(hour=1, minute=30), NEW_YORK, datetime(2024, 11, 2, 12, tzinfo=NEW_YORK),
     ["2024-11-03T01:30-04:00", "2024-11-04T01:30-05:00"]),
    (crontab(minute="*/20"), NEW_YORK, datetime(2024, 11, 3, 0, 50, tzinfo=NEW_YORK),
     ["2024-11-03T01:00-04:00", "2024-11-03T01:20-04:00", "2024-11-03T01:40-04:00", "2024-11-03T01:00-05:00",
      "2024-11-03T01:20-05:00", "2024-11-03T01:40-05:00", "2024-11-03T02:00-05:00"]),
    # a crontab's own zone wins over the app's
    (crontab(hour=9, minute=0, tz="America/New_York"), MOSCOW, datetime(2024, 6, 1, tzinfo=UTC),
     ["2024-06-01T09:00-04:00"]),
])
def test_crontab_next_runs(cron, tz, start, expected) -> None:
    assert runs(cron, start, len(expected), tz) == expected


# Each zone's two 2024 changes, as UTC moments.
TRANSITIONS = {
    "Europe/Berlin": [datetime(2024, 3, 31, 1, tzinfo=UTC), datetime(2024, 10, 27, 1, tzinfo=UTC)],
    "America/New_York": [datetime(2024, 3, 10, 7, tzinfo=UTC), datetime(2024, 11, 3, 6, tzinfo=UTC)],
    "Australia/Lord_Howe": [datetime(2024, 4, 6, 15, tzinfo=UTC), datetime(2024, 10, 5, 15, 30, tzinfo=UTC)],
}


@pytest.mark.parametrize("zone_name", sorted(TRANSITIONS))
@pytest.mark.parametrize("minute", [0, "*/15", 45])
def test_entries_for_every_hour_keep_real_time_across_dst(zone_name, minute) -> None:
    """Hourly-style entries run at the same real spacing through both changes: none doubled, none lost."""
    tz = ZoneInfo(zone_name)
    cron = crontab(minute=minute)
    spacing = 3600 if minute != "*/15" else 900
    for change in TRANSITIONS[zone_name]:
        t = cron.next_after(change.timestamp() - 6 * 3600, tz)
        moments = [t]
        while t < change.timestamp() + 6 * 3600:
            t = cron.next_after(t, tz)
            moments.append(t)
        gaps = {b - a for a, b in itertools.pairwise(moments)}
        # Lord Howe moves by 30 minutes: an hourly wall-clock entry cannot keep 60 real minutes there.
        if zone_name == "Australia/Lord_Howe" and spacing == 3600:
            assert gaps <= {1800, 3600, 5400}
        else:
            assert gaps == {spacing}, (zone_name, minute, sorted(gaps))


@pytest.mark.parametrize("zone_name", sorted(TRANSITIONS))
@pytest.mark.parametrize(("hour", "minute"), [(2, 30), (1, 30), (3, 0), (0, 0), (2, 0)])
def test_daily_entries_run_once_each_day_across_dst(zone_name, hour, minute) -> None:
    tz = ZoneInfo(zone_name)
    cron = crontab(hour=hour, minute=minute)
    for change in TRANSITIONS[zone_name]:
        t = change.timestamp() - 3 * 86400
        days = []
        while t < change.timestamp() + 3 * 86400:
            t = cron.next_after(t, tz)
            days.append(datetime.fromtimestamp(t, tz).date())
        assert len(days) == len(set(days)), f"a day ran twice: {days}"
        assert all((b - a).days == 1 for a, b in itertools.pairwise(days)), f"a day was lost: {days}"


@pytest.mark.parametrize("sched", [crontab(), crontab(minute="*/15"), crontab(hour=2, minute=30),
                                   crontab(minute=30, hour="0-4"), schedule(7), schedule(1800.0)])
@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "America/New_York", "UTC"])
def test_last_run_at_or_before_agrees_with_next_run(sched, zone_name) -> None:
    tz = ZoneInfo(zone_name)
    for change in TRANSITIONS.get(zone_name, [datetime(2024, 3, 31, 1, tzinfo=UTC)]):
        t = change.timestamp() - 3 * 3600
        for _ in range(40):
            nxt = sched.next_after(t, tz)
            assert sched.last_at_or_before(nxt, tz) == nxt
            assert sched.last_at_or_before(nxt - 0.5, tz) <= t < nxt
            t = nxt - 0.25 if _ % 2 else nxt


def test_counting_runs_between_two_moments() -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    assert crontab(minute="*/15").count_between(start, start + 3600) == 4
    assert crontab(minute="*/15").count_between(start, start + 7 * 86400, cap=1000) == 672
    assert crontab().count_between(start, start + 30 * 86400, cap=1000) == 1000
    assert schedule(10).count_between(start, start + 60) == 6
    assert schedule(10).count_between(start + 1, start + 9) == 0


# -- intervals --------------------------------------------------------------------------------

@pytest.mark.parametrize(("every", "words"), [
    (1, "every second"), (1.5, "every 1.5 seconds"), (90, "every 90 seconds"), (60, "every minute"),
    (300.0, "every 5 minutes"), (1800.0, "every 30 minutes"), (3600, "every hour"),
    (timedelta(hours=2), "every 2 hours"), (timedelta(days=1), "every day"), (timedelta(days=7), "every 7 days"),
])
def test_intervals_in_words(every, words) -> None:
    assert schedule(every).human() == words


def test_intervals_are_aligned_to_the_epoch_so_every_scheduler_agrees() -> None:
    half_hour = schedule(1800.0)
    t = datetime(2024, 5, 1, 10, 7, 13, tzinfo=UTC).timestamp()
    assert runs(half_hour, datetime.fromtimestamp(t, UTC), 3) == [
        "2024-05-01T10:30+00:00", "2024-05-01T11:00+00:00", "2024-05-01T11:30+00:00"]
    assert half_hour.last_at_or_before(t) == datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp()
    daily = as_schedule(timedelta(days=1))
    assert runs(daily, datetime(2024, 5, 1, 10, tzinfo=UTC), 1) == ["2024-05-02T00:00+00:00"]
    fractional = schedule(0.1)
    for k in (10, 33, 1_000_007):  # float steps never land a tick at or before its start
        assert fractional.next_after(k * 0.1) > k * 0.1
    assert as_schedule(30) == schedule(30.0) == schedule(timedelta(seconds=30))


def test_stored_forms_read_back() -> None:
    for sched in (schedule(1800.0), crontab(minute="*/15"), crontab(hour=3, minute=0, tz="Europe/Moscow"),
                  crontab(day_of_week="mon-fri", minute=0, hour=9)):
        assert from_dict(sched.to_dict()) == sched


def test_celery_is_due_and_remaining_estimate() -> None:
    every_minute = crontab()
    now = datetime.now(UTC)
    due, next_check = every_minute.is_due(now - timedelta(minutes=2))
    assert due and 0 <= next_check <= 60
    due, next_check = schedule(3600).is_due(now)
    assert not due and 0 <= next_check <= 3600
    assert timedelta(0) < schedule(3600).remaining_estimate(now) <= timedelta(hours=1)


# -- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("make", "message"), [
    (lambda: crontab(minute=60), r"^crontab minute=60: out of range \(use 0-59"),
    (lambda: crontab(hour="25"), r"^crontab hour='25': out of range \(use 0-23"),
    (lambda: crontab(day_of_month=0), r"^crontab day_of_month=0: out of range \(use 1-31"),
    (lambda: crontab(month_of_year="13"), r"^crontab month_of_year='13': out of range \(use 1-12"),
    (lambda: crontab(day_of_week="funday"), r"^crontab day_of_week='funday': 'funday' is not a day name"),
    (lambda: crontab(minute="*/0"), r"^crontab minute='\*/0': not understood"),
    (lambda: crontab(minute="every"), r"^crontab minute='every': not understood"),
    (lambda: crontab(minute="0 5"), r"^crontab minute='0 5': not a cron field"),
    (lambda: crontab(minute=-5), r"^crontab minute=-5: negative numbers are not allowed"),
    (lambda: crontab(minute=True), r"^crontab minute=True: give a number"),
    (lambda: crontab(hour=2.5), r"^crontab hour=2.5: give a number"),
    (lambda: crontab(hour=[]), r"^crontab hour=\[\]: a list must hold numbers"),
    (lambda: crontab(minute=0, hour=0, day_of_month=30, month_of_year=2), r"never matches a date"),
    (lambda: crontab(tz="Europe/Moskow"), r"^timezone 'Europe/Moskow' is not a known zone \(did you mean "
                                          r"'Europe/Moscow'\?\)$"),
    (lambda: schedule(0), r"^schedule 0: the interval must be more than 0 seconds$"),
    (lambda: schedule(-30.0), r"must be more than 0 seconds"),
    (lambda: schedule(timedelta(0)), r"must be more than 0 seconds"),
    (lambda: schedule("10"), r"^schedule '10': give seconds \(a number\) or a timedelta$"),
    (lambda: solar("sunset", 59.9, 10.7), r"solar schedules are not supported"),
    (lambda: zone("Mars/Olympus"), r"^timezone 'Mars/Olympus' is not a known zone"),
])
def test_bad_schedules_give_one_line_errors(make, message) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        make().check()
    assert "\n" not in str(caught.value)


def test_a_bad_schedule_raises_when_used_and_names_its_entry_in_beat_schedule() -> None:
    """Written in a settings dict, ``crontab(hour=25)`` must not break the import; beat names the entry."""
    bad = crontab(hour=25, minute=0)
    assert "invalid" in repr(bad)
    with pytest.raises(ConfigurationError, match=r"^crontab hour=25: out of range"):
        bad.next_after(0)
    with pytest.raises(ConfigurationError, match=r"^beat_schedule\['cleanup-old-carts'\]: 'schedule': "
                                                 r"crontab hour=25: out of range \(use 0-23"):
        parse("cleanup-old-carts", {"task": "store.tasks.cleanup_old_carts", "schedule": bad})


@pytest.mark.parametrize(("spec", "message"), [
    ({"task": "t"}, r"^beat_schedule\['job'\]: 'schedule' is missing"),
    ({"task": "t", "schedule": "every day"}, r"^beat_schedule\['job'\]: 'schedule': 'every day' is not a schedule"),
    ({"task": "t", "schedule": crontab(), "schedul": 1}, r"unknown key 'schedul' \(did you mean 'schedule'\?\)"),
    ({"schedule": 10}, r"^beat_schedule\['job'\]: 'task' must be the task's name, not None"),
    ({"task": "t", "schedule": 10, "args": "abc"}, r"'args' must be a list or tuple, not str"),
    ({"task": "t", "schedule": 10, "kwargs": [1]}, r"'kwargs' must be a dict, not list"),
    ({"task": "t", "schedule": 10, "options": {"queu": "x"}}, r"unknown option 'queu' \(did you mean 'queue'\?\)"),
    ({"task": "t", "schedule": 10, "options": {"missed": "skip"}}, r"put 'missed' beside 'task'"),
    ({"task": "t", "schedule": 10, "options": {"priority": 10}}, r"option 'priority' must be a whole number 0-9"),
    ({"task": "t", "schedule": 10, "options": {"expires": -1}}, r"option 'expires' must be seconds"),
    ({"task": "t", "schedule": 10, "missed": "always"}, r"'missed' must be 'once' or 'skip', not 'always'"),
    ({"task": "t", "schedule": 0}, r"^beat_schedule\['job'\]: 'schedule': schedule 0: the interval must be more"),
    ("t", r"^beat_schedule\['job'\]: an entry is a dict"),
])
def test_bad_beat_entries_name_the_entry_and_the_field(spec, message) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        parse("job", spec)
    assert "\n" not in str(caught.value)


def test_entries_take_celerys_keys_and_a_missed_policy() -> None:
    entry = parse("job", {"task": "proj.tasks.add", "schedule": timedelta(seconds=30), "args": (16, 16),
                          "kwargs": {"z": 1}, "options": {"queue": "q", "priority": 5,
                                                          "expires": timedelta(minutes=1)},
                          "relative": False})
    assert (entry.task, entry.args, entry.kwargs, entry.missed) == ("proj.tasks.add", (16, 16), {"z": 1}, "once")
    assert entry.options == {"queue": "q", "priority": 5, "expires": 60.0}
    assert parse("job", {"task": "t", "schedule": 5}, default_missed="skip").missed == "skip"
    assert parse("job", {"task": "t", "schedule": 5, "missed": "once"}, default_missed="skip").missed == "once"
