"""What mail providers tell us happened to our messages: recorded once, acted on, counted.

A provider's webhook (e.g. `transports/sendgrid_webhook.py`) verifies and parses its own
format into `ProviderEvent`s; everything after that is provider-neutral and lives here: one
`MailEvent` row per event, keyed by the provider's event id, so a batch that is retried or
replayed is applied once; the suppression rules (`VERDICTS`: a hard bounce, a complaint or a
provider-side unsubscribe stops all mail to the person); and the per-delivery stats. Rows
hold no address: the subscriber and delivery are foreign keys that cascade, so erasing a
person erases their events too.

Event kinds use SendGrid's vocabulary (bounce, dropped, spamreport, unsubscribe,
group_unsubscribe, delivered, open, click, …); another provider's webhook maps its own kinds
onto these.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String
from sqlmodel import Field, Session, SQLModel, col, func, select

from newsletter.db import chunked
from newsletter.dbtypes import UTCDateTime, utcnow
from newsletter.delivery.models import Delivery
from subscribers import lifecycle, service
from subscribers.models import Status, Subscriber

#: Provider event → the never-mail status it puts the recipient in.
VERDICTS = {
    "bounce": Status.BOUNCED,
    "dropped": Status.BOUNCED,
    "spamreport": Status.COMPLAINED,
    "unsubscribe": Status.UNSUBSCRIBED,
    "group_unsubscribe": Status.UNSUBSCRIBED,
}


class WebhookRefused(Exception):
    """A request that must not be processed; `status` is the HTTP code to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ProviderEvent:
    """One event as a provider reported it, in provider-neutral terms."""

    key: str  # the provider's event id (or a digest of the event), for dedupe
    kind: str  # SendGrid's vocabulary: bounce, spamreport, delivered, …
    delivery_id: int | None = None  # our delivery id, as we handed it to the provider
    email: str | None = None
    occurred_at: datetime | None = None
    temporary: bool = False  # e.g. a `blocked` bounce: counted, but mail is not stopped


@dataclass
class WebhookReport:
    """What one batch did (returned to the provider as JSON, handy when replaying by hand)."""

    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    ignored: int = 0
    status_changes: int = 0


class MailEvent(SQLModel, table=True):
    """One provider event (SendGrid Event Webhook), recorded once."""

    id: int | None = Field(default=None, primary_key=True)
    event_key: str = Field(
        max_length=128,
        unique=True,
        index=True,
        description="Provider event id (sg_event_id), or a hash of the event when it has none.",
    )
    event: str = Field(sa_type=String(32), index=True)
    delivery_id: int | None = Field(default=None, foreign_key="delivery.id", ondelete="CASCADE", index=True)
    subscriber_id: int | None = Field(
        default=None, foreign_key="subscriber.id", ondelete="CASCADE", index=True
    )
    occurred_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def delivery_stats(session: Session, delivery_ids: Sequence[int] | None = None) -> dict[int, Counter[str]]:
    """Per delivery, how many of each provider event arrived (delivered, open, click, …)."""
    query = (
        select(col(MailEvent.delivery_id), col(MailEvent.event), func.count())
        .where(col(MailEvent.delivery_id).is_not(None))
        .group_by(col(MailEvent.delivery_id), col(MailEvent.event))
    )
    if delivery_ids is not None:
        query = query.where(col(MailEvent.delivery_id).in_(list(delivery_ids)))
    stats: dict[int, Counter[str]] = {}
    for delivery_id, event, count in session.exec(query):
        if delivery_id is not None:
            stats.setdefault(delivery_id, Counter())[event] = count
    return stats


def history(session: Session, subscriber_id: int) -> list[dict[str, object]]:
    """The provider events about one subscriber's mail, oldest first ("download my data")."""
    rows = session.exec(
        select(MailEvent).where(MailEvent.subscriber_id == subscriber_id).order_by(col(MailEvent.id))
    )
    return [
        row.model_dump(mode="json", include={"event", "delivery_id", "occurred_at", "received_at"})
        for row in rows
    ]


def _recipient(session: Session, event: ProviderEvent, delivery: Delivery | None) -> Subscriber | None:
    """The subscriber the event is about: by address, else by the delivery it names."""
    if event.email:
        found = service.find(session, event.email)
        if found is not None:
            return found
    if delivery is not None:
        return session.get(Subscriber, delivery.subscriber_id)
    return None


def record_events(session: Session, events: Sequence[ProviderEvent], report: WebhookReport) -> WebhookReport:
    """Record and apply a verified batch; events seen before (by key) do nothing."""
    known: set[str] = set()
    for chunk in chunked([e.key for e in events]):
        known.update(session.exec(select(MailEvent.event_key).where(col(MailEvent.event_key).in_(chunk))))
    for event in events:
        if event.key in known:
            report.duplicates += 1
            continue
        known.add(event.key)
        delivery = session.get(Delivery, event.delivery_id) if event.delivery_id is not None else None
        subscriber = _recipient(session, event, delivery)
        session.add(
            MailEvent(
                event_key=event.key,
                event=event.kind,
                delivery_id=delivery.id if delivery else None,
                subscriber_id=subscriber.id if subscriber else None,
                occurred_at=event.occurred_at,
            )
        )
        report.recorded += 1
        verdict = VERDICTS.get(event.kind)
        if verdict is None or subscriber is None or event.temporary:
            continue
        if lifecycle.apply_verdict(session, subscriber, verdict):
            report.status_changes += 1
    session.flush()
    return report
