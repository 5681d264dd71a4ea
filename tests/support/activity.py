"""A month of real activity for the admin dashboard's tests, made by the code that makes it in
production, with the clock moved day by day (time-machine):

- six readers sign up and confirm on different days (`lifecycle.request_signup`, `confirm`);
- every day each active reader's digest is recorded and sent through the outbox and the file
  transport at 07:00 + a few minutes (some days nothing matches: skipped);
- the provider's events arrive through `record_events` (delivered, opens, clicks; one bounce
  that suppresses a reader; one spam complaint);
- votes come through `record_vote`; one reader unsubscribes.

`Month.expected` keeps what each chart must show, counted independently of `jobs.metrics`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import time_machine
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.db import session_scope
from newsletter.delivery import outbox
from newsletter.delivery.events import ProviderEvent, WebhookReport, record_events
from newsletter.delivery.models import Delivery, DeliveryStatus
from newsletter.delivery.outbox import Plan, SendReport
from newsletter.delivery.transports import get_transport
from newsletter.digest.context import DigestItem
from newsletter.papers.models import Paper
from newsletter.settings import Settings
from subscribers import lifecycle, service
from subscribers.feedback import record_vote
from subscribers.models import Status, Subscriber
from tests.support.papers import make_paper

DAYS = 30
#: reader → (day they confirm, interests)
READERS = {
    "ada@example.org": (0, "graph neural networks, protein folding"),
    "grace@example.org": (0, "speech recognition"),
    "alan@example.org": (1, "graph neural networks"),
    "edsger@example.org": (3, "diffusion models"),
    "barbara@example.org": (5, "speech recognition, diffusion models"),
    "ken@example.org": (8, "reinforcement learning"),
}
BOUNCES_ON = ("barbara@example.org", 21)
COMPLAINS_ON = ("alan@example.org", 24)
UNSUBSCRIBES_ON = ("ken@example.org", 15)


@dataclass
class Month:
    """What was made, and what the dashboard must therefore show (per day, oldest first)."""

    first: date
    last: date
    expected: dict[str, Counter[date]] = field(default_factory=dict)

    def count(self, name: str, day: date, n: int = 1) -> None:
        self.expected.setdefault(name, Counter())[day] += n

    def total(self, name: str) -> int:
        return sum(self.expected.get(name, Counter()).values())


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def make_month(engine: Engine, settings: Settings, today: date) -> Month:
    """Thirty days of activity ending `today` (the clock is put back afterwards)."""
    first = today - timedelta(days=DAYS - 1)
    month = Month(first, today)
    with session_scope(engine) as session:
        papers = [make_paper(i, upvotes=i % 7, first_seen_at=_at(first, 1)) for i in range(40)]
        session.add_all(papers)
        session.flush()
        paper_ids = [p.id or 0 for p in papers]
    for offset in range(DAYS):
        day = first + timedelta(days=offset)
        _sign_ups(engine, month, day, offset)
        _send_day(engine, settings, month, day, offset, paper_ids)
        _feedback(engine, month, day, offset, paper_ids)
    assert month.total("bounced") == 1 and month.total("complaints") == 1, (
        "the month lacks its bounce or complaint"
    )
    return month


def _sign_ups(engine: Engine, month: Month, day: date, offset: int) -> None:
    for email, (confirm_day, interests) in READERS.items():
        if confirm_day != offset:
            continue
        with time_machine.travel(_at(day, 6), tick=False), session_scope(engine) as session:
            pending = lifecycle.request_signup(session, service.build_create(email, interests))
            assert pending is not None
        with time_machine.travel(_at(day, 6, 30), tick=False), session_scope(engine) as session:
            subscriber = service.require(session, email)
            lifecycle.confirm(session, subscriber, _at(day, 6))
        month.count("confirmed", day)
    email, when = UNSUBSCRIBES_ON
    if when == offset:
        with time_machine.travel(_at(day, 12), tick=False), session_scope(engine) as session:
            lifecycle.unsubscribe(session, service.require(session, email))
        month.count("unsubscribed", day)


def _send_day(
    engine: Engine, settings: Settings, month: Month, day: date, offset: int, paper_ids: list[int]
) -> None:
    with Session(engine) as session:
        active = list(
            session.exec(select(Subscriber).where(Subscriber.status == Status.ACTIVE).order_by(Subscriber.id))  # type: ignore[arg-type]
        )
        papers = {p.id: p for p in session.exec(select(Paper))}
    plans = []
    for n, subscriber in enumerate(active):
        # Every fourth reader-day nothing matches (an empty digest); others get 1–3 papers.
        count = 0 if (offset + n) % 4 == 0 else 1 + (offset + n) % 3
        picks = [papers[paper_ids[(offset * 3 + n + k) % len(paper_ids)]] for k in range(count)]
        plans.append(Plan(subscriber, [DigestItem(p, "graph neural networks", None) for p in picks]))
        month.count("papers", day, count)
        month.count("sent" if count else "skipped", day)
    report = SendReport(digest_date=day, transport=settings.transport)
    with time_machine.travel(_at(day, 6, 55), tick=False):
        outbox.record(engine, settings, plans, day, report)
    # Sent at 07:00 + (offset % 5) minutes: the dispatch lag the chart must show.
    with time_machine.travel(_at(day, 7, offset % 5), tick=False), get_transport(settings) as transport:
        outbox.send_pending(engine, settings, transport, day, None, None, [], report)
    assert report.sent == sum(1 for p in plans if p.items), report
    _events(engine, month, day, offset)


def _events(engine: Engine, month: Month, day: date, offset: int) -> None:
    with Session(engine) as session:
        rows = list(
            session.exec(
                select(Delivery, Subscriber.email)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)  # type: ignore[arg-type]
                .where(Delivery.digest_date == day, Delivery.status == DeliveryStatus.SENT)
            )
        )
    events = []
    for delivery, email in rows:
        moment = _at(day, 8)
        key = f"{day}:{delivery.id}"
        if (email, offset) == BOUNCES_ON:
            events.append(ProviderEvent(f"{key}:bounce", "bounce", delivery.id, email, moment))
            month.count("bounced", day)
            continue
        events.append(ProviderEvent(f"{key}:delivered", "delivered", delivery.id, email, moment))
        month.count("delivered", day)
        if (delivery.id or 0) % 2 == 0:
            events.append(
                ProviderEvent(f"{key}:open", "open", delivery.id, email, moment + timedelta(hours=1))
            )
            month.count("opened", day)
        if (delivery.id or 0) % 3 == 0:
            events.append(
                ProviderEvent(f"{key}:click", "click", delivery.id, email, moment + timedelta(hours=2))
            )
            month.count("clicked", day)
        if (email, offset) == COMPLAINS_ON:
            events.append(ProviderEvent(f"{key}:spam", "spamreport", delivery.id, email, moment))
            month.count("complaints", day)
    with session_scope(engine) as session:
        record_events(session, events, WebhookReport(received=len(events)))


def _feedback(engine: Engine, month: Month, day: date, offset: int, paper_ids: list[int]) -> None:
    if offset % 3:
        return
    with time_machine.travel(_at(day, 9), tick=False), session_scope(engine) as session:
        ada = service.require(session, "ada@example.org")
        vote = 1 if offset % 2 == 0 else -1
        record_vote(session, ada.id or 0, paper_ids[offset], vote)
    month.count("more" if vote > 0 else "less", day)
