"""Subscriber and Feedback tables, with the Base/Create/Update/Public variants.

The address is kept as validated (`email`) plus a lower-cased copy (`email_key`) with the
unique index, so `Ada@Example.org` and `ada@example.org` are one subscriber on any database.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from newsletter.dbtypes import JSONList, UTCDateTime, utcnow


class Status(StrEnum):
    """Where a subscriber is in their life cycle; only `active` ones get digests."""

    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


#: Statuses that must never be mailed again, whatever any command does.
NEVER_MAIL = frozenset({Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED})


class Frequency(StrEnum):
    """How often a digest goes out."""

    DAILY = "daily"
    WEEKLY = "weekly"


class SubscriberBase(SQLModel):
    """The preferences a subscriber (or an admin) can set."""

    interests: list[str] = Field(default_factory=list, sa_type=JSONList)
    timezone: str = Field(default="UTC", max_length=64)
    send_hour: int = Field(default=7, ge=0, le=23)
    frequency: Frequency = Field(default=Frequency.DAILY, sa_type=String(16))
    weekday: int = Field(default=0, ge=0, le=6, description="Weekly digests: 0 = Monday.")
    max_papers: int = Field(default=10, ge=1, le=50)
    send_empty: bool = Field(default=False, description="On quiet days send a short 'nothing new' note.")


class Subscriber(SubscriberBase, table=True):
    """A person who gets (or got, or will get) the digest."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320)
    email_key: str = Field(max_length=320, unique=True, index=True)
    status: Status = Field(default=Status.PENDING, sa_type=String(16), index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    unsubscribed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SubscriberCreate(SubscriberBase):
    """Input of `subscribers add`, CSV import and the sign-up form."""

    email: str
    status: Status = Status.PENDING


class SubscriberUpdate(SQLModel):
    """A partial change: only fields that are set are applied."""

    interests: list[str] | None = None
    timezone: str | None = None
    send_hour: int | None = Field(default=None, ge=0, le=23)
    frequency: Frequency | None = None
    weekday: int | None = Field(default=None, ge=0, le=6)
    max_papers: int | None = Field(default=None, ge=1, le=50)
    send_empty: bool | None = None
    status: Status | None = None


class SubscriberPublic(SubscriberBase):
    """What the CLI's JSON/CSV output and exports show (stable keys)."""

    id: int
    email: str
    status: Status
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None


class Feedback(SQLModel, table=True):
    """A subscriber's "more like this" (+1) or "less like this" (-1) on one paper."""

    __table_args__ = (UniqueConstraint("subscriber_id", "paper_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE", index=True)
    paper_id: int = Field(foreign_key="paper.id", ondelete="CASCADE", index=True)
    vote: int = Field(description="+1 more like this, -1 less like this.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
