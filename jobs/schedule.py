"""When is a subscriber's digest due? Pure time arithmetic, no database, no clock.

A digest belongs to a *local* date: the date in the subscriber's timezone on which it goes
out at their send hour (weekly digests only on their weekday). Everything here works on
that local date and turns it into one UTC instant, so daylight-saving changes can neither
skip a day nor send two: each local date maps to exactly one instant.

- A send hour that does not exist that day (clocks jump forward over it) resolves to the
  same wall-clock reading in the old offset, i.e. that much later in real time; the day
  still gets its digest.
- A send hour that happens twice (clocks go back) uses its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

#: A weekly schedule's latest occurrence is at most this many local days back.
_LOOKBACK_DAYS = 8


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """ZoneInfo keeps only a few zones alive; dispatch asks for the same few hundred often."""
    return ZoneInfo(name)


@dataclass(frozen=True)
class SendSchedule:
    """A subscriber's delivery timing: timezone, local hour, daily or weekly on a weekday."""

    timezone: str
    send_hour: int
    weekly: bool = False
    weekday: int = 0  # 0 = Monday, as in date.weekday()

    def sends_on(self, local_date: date) -> bool:
        """Whether a digest is scheduled on this local date at all."""
        return not self.weekly or local_date.weekday() == self.weekday

    def send_instant(self, local_date: date) -> datetime:
        """The UTC instant of the send hour on `local_date` in the subscriber's timezone.

        fold=0 gives the first of two ambiguous readings and moves a non-existent reading
        forward by the size of the gap (PEP 495), which is exactly the rule above.
        """
        local = datetime.combine(local_date, time(self.send_hour), tzinfo=zone(self.timezone))
        return local.astimezone(UTC)


@dataclass(frozen=True)
class Occurrence:
    """One scheduled digest: its local date and when it was (or is) due in UTC."""

    digest_date: date
    scheduled_at: datetime

    def lateness(self, now: datetime) -> timedelta:
        """How long ago the digest became due (negative while still in the future)."""
        return now - self.scheduled_at

    def missed(self, now: datetime, grace: timedelta) -> bool:
        """True when it is too late to send: the grace period after the send time is over."""
        return self.lateness(now) > grace


def latest_occurrence(schedule: SendSchedule, now: datetime) -> Occurrence | None:
    """The most recent scheduled digest whose send time is at or before `now`.

    Dispatch only ever looks at this one: older digests were either sent, recorded as
    missed, or are superseded (the next digest covers everything since the last one sent).
    Returns None only for a weekly schedule that has not reached its first weekday… which
    cannot happen within the look-back window, but keeps the type honest.
    """
    _require_aware(now)
    local_today = now.astimezone(zone(schedule.timezone)).date()
    for back in range(_LOOKBACK_DAYS):
        day = local_today - timedelta(days=back)
        if schedule.sends_on(day):
            instant = schedule.send_instant(day)
            if instant <= now:
                return Occurrence(day, instant)
    return None


def next_occurrence(schedule: SendSchedule, now: datetime) -> Occurrence:
    """The first scheduled digest strictly after `now` (for showing "next digest at")."""
    _require_aware(now)
    day = now.astimezone(zone(schedule.timezone)).date() - timedelta(days=1)
    while True:
        if schedule.sends_on(day):
            instant = schedule.send_instant(day)
            if instant > now:
                return Occurrence(day, instant)
        day += timedelta(days=1)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("naive datetime; pass an aware UTC instant such as datetime.now(UTC)")
