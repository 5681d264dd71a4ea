"""What the mail provider told us happened to our messages, and the delivery stats built on it.

One row per provider event, keyed by the provider's event id, so a webhook batch that is
retried or replayed is applied once. Rows hold no address: the subscriber and delivery are
foreign keys that cascade, so erasing a person erases their events too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import String
from sqlmodel import Field, Session, SQLModel, col, func, select

from newsletter.dbtypes import UTCDateTime, utcnow

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
    delivery_id: int | None = Field(
        default=None, foreign_key="delivery.id", ondelete="CASCADE", index=True
    )
    subscriber_id: int | None = Field(
        default=None, foreign_key="subscriber.id", ondelete="CASCADE", index=True
    )
    occurred_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def delivery_stats(
    session: Session, delivery_ids: Sequence[int] | None = None
) -> dict[int, Counter[str]]:
    """Per delivery, how many of each provider event arrived (delivered, open, click, …)."""
    query = (
        select(MailEvent.delivery_id, MailEvent.event, func.count())
        .where(col(MailEvent.delivery_id).is_not(None))
        .group_by(MailEvent.delivery_id, MailEvent.event)
    )
    if delivery_ids is not None:
        query = query.where(col(MailEvent.delivery_id).in_(list(delivery_ids)))
    stats: dict[int, Counter[str]] = {}
    for delivery_id, event, count in session.exec(query):
        stats.setdefault(delivery_id, Counter())[event] = count
    return stats
