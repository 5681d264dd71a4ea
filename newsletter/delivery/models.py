"""The delivery outbox: one row per (subscriber, digest date), the idempotency key.

A row is written (with the papers it will carry) before anything is sent, so a crash or a
second run finds it and never sends that digest again; DeliveryItem also tells ranking which
papers a subscriber has already received.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from newsletter.dbtypes import UTCDateTime, utcnow


class DeliveryStatus(StrEnum):
    """pending → sending → sent | failed; skipped when nothing new matched.

    sending: claimed by one run (`claimed_by`) until `claim_expires_at`, which that run keeps
    pushing forward while it is alive; only a row whose claim has expired is taken over.

    missed: the scheduler was down past the grace period after the send time, so the
    digest was recorded as missed instead of arriving hours late (jobs/digest.py).
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped-nothing-new"
    MISSED = "skipped-missed"


class Delivery(SQLModel, table=True):
    """One digest for one subscriber on one date."""

    __table_args__ = (UniqueConstraint("subscriber_id", "digest_date"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE", index=True)
    digest_date: date = Field(index=True)
    status: DeliveryStatus = Field(default=DeliveryStatus.PENDING, sa_type=String(32), index=True)
    attempts: int = 0
    message_id: str | None = Field(default=None, max_length=255)
    provider_message_id: str | None = Field(default=None, max_length=255)
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=255, description="the run that last claimed it")
    claim_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryItem(SQLModel, table=True):
    """A paper carried by a delivery, with why it was picked (shown in the email)."""

    __table_args__ = (UniqueConstraint("delivery_id", "paper_id"),)

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", ondelete="CASCADE", index=True)
    paper_id: int = Field(foreign_key="paper.id", ondelete="CASCADE", index=True)
    rank: int
    score: float
    reason: str = Field(default="interest", max_length=16, description="interest|author|liked")
    matched_interest: str | None = Field(default=None, sa_type=Text)
    highlight: str | None = Field(default=None, sa_type=Text)


class ConfirmationEmail(SQLModel, table=True):
    """One confirmation email sent to a pending address: the per-day cap counts these rows."""

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE", index=True)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    message_id: str | None = Field(default=None, max_length=255)
