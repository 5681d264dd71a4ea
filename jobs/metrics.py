"""The operator's numbers: what the admin dashboard charts, per day, from the rows themselves.

Every figure is a GROUP BY over the tables that already record what happened (the outbox,
provider events, subscribers, votes), so the dashboard needs no counters of its own and can
never disagree with `deliveries list` or `stats`. Each function reads one window of days and
returns a `Daily` table (one value per series and day, zeros where nothing happened), ready to
draw. They sit in jobs/ because they read several floors at once.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from jobs.schedule import SendSchedule
from newsletter.db import as_date, utc_date
from newsletter.delivery.events import MailEvent
from newsletter.delivery.models import Delivery, DeliveryItem, DeliveryStatus
from newsletter.papers.models import Paper
from subscribers.models import Feedback, Frequency, Status, Subscriber

#: Days a dashboard shows unless asked otherwise.
DEFAULT_DAYS = 30

#: Outbox statuses as the dashboard groups them.
DIGEST_GROUPS = {
    DeliveryStatus.SENT: "sent",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.SKIPPED: "skipped",
    DeliveryStatus.MISSED: "skipped",
}
#: Provider events as the dashboard groups them (a drop is a bounce the provider saw coming).
EVENT_GROUPS = {
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "bounce": "bounced",
    "dropped": "bounced",
    "spamreport": "complaints",
}


@dataclass
class Daily:
    """Series of numbers, one per day of `days` (oldest first)."""

    days: list[date]
    series: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def empty(cls, first: date, last: date, names: Iterable[str]) -> Daily:
        """Zeros for every day from `first` to `last` and every series name."""
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return cls(days, {name: [0.0] * len(days) for name in names})

    def add(self, name: str, day: date, value: float) -> None:
        """Add `value` to series `name` on `day` (days outside the window are ignored)."""
        index = (day - self.days[0]).days
        if 0 <= index < len(self.days):
            self.series[name][index] += value

    def total(self, name: str) -> float:
        """The sum of one series over the window."""
        return sum(self.series[name])

    def rows(self) -> list[dict[str, object]]:
        """One dict per day (the table beside each chart, and JSON)."""
        return [
            {"date": day.isoformat(), **{name: values[i] for name, values in self.series.items()}}
            for i, day in enumerate(self.days)
        ]


def window(days: int, today: date) -> tuple[date, date]:
    """The first and last day of a window of `days` days ending `today`."""
    return today - timedelta(days=days - 1), today


def digests(session: Session, days: int, today: date) -> Daily:
    """Digests per digest date: sent, failed, skipped (nothing new, or missed)."""
    first, last = window(days, today)
    out = Daily.empty(first, last, ["sent", "failed", "skipped"])
    rows = session.exec(
        select(col(Delivery.digest_date), col(Delivery.status), func.count())
        .where(col(Delivery.digest_date) >= first, col(Delivery.digest_date) <= last)
        .group_by(col(Delivery.digest_date), col(Delivery.status))
    )
    for day, status, count in rows:
        group = DIGEST_GROUPS.get(DeliveryStatus(status))
        if group:
            out.add(group, as_date(day), count)
    return out


def provider_events(session: Session, days: int, today: date) -> Daily:
    """What the provider's webhook reported per day: delivered, opened, clicked, bounced,
    complaints (by when it happened, else when we heard of it)."""
    first, last = window(days, today)
    out = Daily.empty(first, last, ["delivered", "opened", "clicked", "bounced", "complaints"])
    when = utc_date(func.coalesce(col(MailEvent.occurred_at), col(MailEvent.received_at)))
    start = datetime.combine(first - timedelta(days=1), time.min, tzinfo=UTC)
    rows = session.exec(
        select(when, col(MailEvent.event), func.count())
        .where(col(MailEvent.received_at) >= start)
        .group_by(when, col(MailEvent.event))
    )
    for day, event, count in rows:
        group = EVENT_GROUPS.get(event)
        if group and day is not None:
            out.add(group, as_date(day), count)
    return out


def subscribers(session: Session, days: int, today: date) -> Daily:
    """Per day: addresses that confirmed, and subscribers who unsubscribed."""
    first, last = window(days, today)
    out = Daily.empty(first, last, ["confirmed", "unsubscribed"])
    for name, column in (
        ("confirmed", Subscriber.confirmed_at),
        ("unsubscribed", Subscriber.unsubscribed_at),
    ):
        day = utc_date(col(column))
        for when, count in session.exec(
            select(day, func.count()).where(col(column).is_not(None)).group_by(day)
        ):
            out.add(name, as_date(when), count)
    return out


def votes(session: Session, days: int, today: date) -> Daily:
    """ "More like this" and "less like this" votes per day (their latest change)."""
    first, last = window(days, today)
    out = Daily.empty(first, last, ["more", "less"])
    day = utc_date(col(Feedback.created_at))
    for when, vote, count in session.exec(
        select(day, col(Feedback.vote), func.count()).group_by(day, col(Feedback.vote))
    ):
        out.add("more" if vote > 0 else "less", as_date(when), count)
    return out


def papers_per_digest(session: Session, days: int, today: date) -> Daily:
    """Per digest date: the mean number of papers in a digest, and the share (%) of digests
    that had nothing (recorded as nothing-new, or sent as a "nothing new" note)."""
    first, last = window(days, today)
    out = Daily.empty(first, last, ["papers", "empty_percent"])
    in_window = (col(Delivery.digest_date) >= first, col(Delivery.digest_date) <= last)
    composed = Counter[date]()
    for day, count in session.exec(
        select(col(Delivery.digest_date), func.count())
        .where(*in_window, col(Delivery.status).in_([DeliveryStatus.SENT, DeliveryStatus.SKIPPED]))
        .group_by(col(Delivery.digest_date))
    ):
        composed[as_date(day)] += count
    sent_with_papers = Counter[date]()
    papers = Counter[date]()
    for day, items, deliveries in session.exec(
        select(
            col(Delivery.digest_date),
            func.count(col(DeliveryItem.id)),
            func.count(func.distinct(col(DeliveryItem.delivery_id))),
        )
        .join(DeliveryItem, col(DeliveryItem.delivery_id) == col(Delivery.id))
        .where(*in_window, col(Delivery.status) == DeliveryStatus.SENT)
        .group_by(col(Delivery.digest_date))
    ):
        papers[as_date(day)] += items
        sent_with_papers[as_date(day)] += deliveries
    for day, total in composed.items():
        # Empty: recorded as nothing-new, or sent as a "nothing new" note (no papers).
        empty = total - sent_with_papers[day]
        out.add("papers", day, round(papers[day] / total, 2))
        out.add("empty_percent", day, round(100 * empty / total, 1))
    return out


def dispatch_lag(session: Session, days: int, today: date) -> Daily:
    """Minutes from a digest's due time (the reader's local send hour) to its send, per day:
    the median over send schedules of the first send, and the worst single send.

    Grouped by schedule (timezone, hour) in the database, so 100,000 readers are a few hundred
    rows; the schedule's due instant is computed once per group by the scheduler's own rule.
    """
    first, last = window(days, today)
    out = Daily.empty(first, last, ["median_minutes", "worst_minutes"])
    # SQLAlchemy's own select: SQLModel's types stop at four columns.
    rows = session.connection().execute(
        sa.select(
            col(Delivery.digest_date),
            col(Subscriber.timezone),
            col(Subscriber.send_hour),
            func.min(col(Delivery.sent_at)),
            func.max(col(Delivery.sent_at)),
        )
        .join(Subscriber, col(Subscriber.id) == col(Delivery.subscriber_id))
        .where(
            col(Delivery.digest_date) >= first,
            col(Delivery.digest_date) <= last,
            col(Delivery.status) == DeliveryStatus.SENT,
            col(Delivery.sent_at).is_not(None),
        )
        .group_by(col(Delivery.digest_date), col(Subscriber.timezone), col(Subscriber.send_hour))
    )
    firsts: dict[date, list[float]] = {}
    worst: dict[date, float] = {}
    for day, timezone, hour, earliest, latest in rows:
        digest_day = as_date(day)
        due = SendSchedule(timezone, hour).send_instant(digest_day)
        firsts.setdefault(digest_day, []).append(max(0.0, (_aware(earliest) - due).total_seconds() / 60))
        lag = max(0.0, (_aware(latest) - due).total_seconds() / 60)
        worst[digest_day] = max(worst.get(digest_day, 0.0), lag)
    for day, values in firsts.items():
        out.add("median_minutes", day, round(statistics.median(values), 1))
        out.add("worst_minutes", day, round(worst[day], 1))
    return out


def _aware(value: datetime | str | None) -> datetime:
    """A MIN/MAX of a timestamp column (SQLite hands those back as naive text; the query
    keeps only rows with one, so None never arrives)."""
    assert value is not None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def top_interests(session: Session, limit: int = 10) -> list[tuple[str, int]]:
    """The interest phrases most active and paused readers share (case-folded), most first."""
    counts: Counter[str] = Counter()
    labels: dict[str, str] = {}
    for interests in session.exec(
        select(col(Subscriber.interests)).where(col(Subscriber.status).in_([Status.ACTIVE, Status.PAUSED]))
    ):
        for phrase in set(interests or []):
            key = " ".join(phrase.casefold().split())
            counts[key] += 1
            labels.setdefault(key, phrase)
    return [(labels[key], count) for key, count in counts.most_common(limit)]


@dataclass(frozen=True)
class Totals:
    """The headline numbers above the charts."""

    active: int
    pending: int
    suppressed: int
    weekly: int
    sent: int
    open_rate: float | None
    bounce_rate: float | None
    complaint_rate: float | None


def totals(session: Session, events: Daily, sent: Daily) -> Totals:
    """Headline numbers: readers by status, digests sent in the window, and the provider's
    open, bounce and complaint rates over the same window (None before any delivery)."""
    by_status = Counter[str](
        dict(
            session.exec(select(col(Subscriber.status), func.count()).group_by(col(Subscriber.status))).all()
        )
    )
    weekly = session.exec(
        select(func.count()).where(
            Subscriber.frequency == Frequency.WEEKLY, Subscriber.status == Status.ACTIVE
        )
    ).one()
    delivered = events.total("delivered")
    sent_count = sent.total("sent")

    def rate(value: float, of: float) -> float | None:
        return round(100 * value / of, 2) if of else None

    return Totals(
        active=by_status[Status.ACTIVE],
        pending=by_status[Status.PENDING],
        suppressed=by_status[Status.BOUNCED] + by_status[Status.COMPLAINED],
        weekly=weekly,
        sent=int(sent_count),
        open_rate=rate(events.total("opened"), delivered),
        bounce_rate=rate(events.total("bounced"), sent_count),
        complaint_rate=rate(events.total("complaints"), delivered),
    )


def papers_of_day(session: Session, day: date, limit: int = 200) -> list[tuple[Paper, int]]:
    """The papers first seen on `day` (UTC), newest first, each with how many digests carried it."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    picked = (
        select(func.count())
        .where(col(DeliveryItem.paper_id) == col(Paper.id))
        .correlate(Paper)
        .scalar_subquery()
    )
    rows = session.exec(
        select(Paper, picked)
        .where(col(Paper.first_seen_at) >= start, col(Paper.first_seen_at) < start + timedelta(days=1))
        .order_by(col(Paper.first_seen_at).desc(), col(Paper.id).desc())
        .limit(limit)
    )
    return [(paper, count) for paper, count in rows]
