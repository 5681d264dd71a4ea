"""When a subscriber's digest is due: local hours, weekly days and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.schedule import SendSchedule, latest_occurrence, next_occurrence

TICK = timedelta(minutes=5)


def _due_dates_by_tick(schedule: SendSchedule, start: datetime, hours: int) -> dict[date, datetime]:
    """Step a clock in 5-minute ticks; return when each digest date first became due."""
    first_due: dict[date, datetime] = {}
    seen_order: list[date] = []
    now = start
    while now < start + timedelta(hours=hours):
        occurrence = latest_occurrence(schedule, now)
        assert occurrence is not None
        if occurrence.digest_date not in first_due:
            first_due[occurrence.digest_date] = now
            seen_order.append(occurrence.digest_date)
        assert occurrence.digest_date == seen_order[-1], "a digest date came back after a later one"
        now += TICK
    return first_due


@pytest.mark.parametrize(
    ("timezone", "change_day"),
    [
        ("Europe/Berlin", date(2026, 3, 29)),  # spring forward
        ("Europe/Berlin", date(2026, 10, 25)),  # fall back
        ("America/New_York", date(2026, 3, 8)),
        ("America/New_York", date(2026, 11, 1)),
        ("Australia/Sydney", date(2026, 4, 5)),  # southern hemisphere, fall back
        ("Asia/Tokyo", date(2026, 10, 25)),  # no DST at all
    ],
)
@pytest.mark.parametrize("hour", [0, 1, 2, 3, 7, 23])
def test_every_local_day_is_due_exactly_once_at_its_hour_across_a_dst_change(
    timezone: str, change_day: date, hour: int
) -> None:
    schedule = SendSchedule(timezone, hour)
    zone = ZoneInfo(timezone)
    start = datetime.combine(change_day - timedelta(days=3), datetime.min.time(), UTC)
    first_due = _due_dates_by_tick(schedule, start, hours=24 * 6)

    dates = sorted(first_due)[1:]  # the first one was already due when the clock started
    assert dates == [dates[0] + timedelta(days=i) for i in range(len(dates))], "a day was skipped"
    assert change_day in dates
    for day in dates:
        local = first_due[day].astimezone(zone)
        assert local.date() == day
        # On the hour, except when that hour does not exist that day (then just after the gap).
        assert schedule.send_instant(day) <= first_due[day] < schedule.send_instant(day) + TICK
        if local.hour != hour:
            assert (local.hour, day) == (hour + 1, change_day)


def test_a_send_hour_skipped_by_spring_forward_still_sends_that_day_just_after_the_gap() -> None:
    instant = SendSchedule("Europe/Berlin", 2).send_instant(date(2026, 3, 29))
    assert instant.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M %Z") == "03:00 CEST"


def test_a_send_hour_repeated_by_fall_back_sends_at_its_first_occurrence() -> None:
    instant = SendSchedule("America/New_York", 1).send_instant(date(2026, 11, 1))
    assert instant == datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 01:00 EDT, not 01:00 EST


def test_tokyo_and_berlin_get_their_digest_at_seven_local_time() -> None:
    tokyo = SendSchedule("Asia/Tokyo", 7).send_instant(date(2026, 11, 27))
    berlin = SendSchedule("Europe/Berlin", 7).send_instant(date(2026, 11, 27))
    assert tokyo == datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
    assert berlin == datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def test_a_weekly_digest_is_due_only_on_its_weekday() -> None:
    schedule = SendSchedule("Europe/Berlin", 7, weekly=True, weekday=4)  # Fridays
    first_due = _due_dates_by_tick(schedule, datetime(2026, 11, 1, tzinfo=UTC), hours=24 * 21)
    assert all(day.weekday() == 4 for day in first_due)
    assert sorted(first_due)[1:] == [date(2026, 11, 6), date(2026, 11, 13), date(2026, 11, 20)]


def test_next_occurrence_is_the_first_send_time_after_now() -> None:
    schedule = SendSchedule("Asia/Tokyo", 7)
    now = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)  # exactly 07:00 in Tokyo
    assert next_occurrence(schedule, now).digest_date == date(2026, 11, 28)
    assert latest_occurrence(schedule, now).digest_date == date(2026, 11, 27)  # type: ignore[union-attr]


def test_a_digest_is_missed_only_once_the_grace_period_is_over() -> None:
    occurrence = latest_occurrence(SendSchedule("UTC", 7), datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    assert occurrence is not None
    assert not occurrence.missed(datetime(2026, 11, 27, 9, 0, tzinfo=UTC), timedelta(hours=2))
    assert occurrence.missed(datetime(2026, 11, 27, 9, 1, tzinfo=UTC), timedelta(hours=2))


def test_naive_times_are_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="naive"):
        latest_occurrence(SendSchedule("UTC", 7), datetime(2026, 11, 27, 9, 0))
