"""A leader lease in the database, so that of several schedulers on one database one works.

APScheduler 3 does not coordinate schedulers that share a job store: each would run every
job. The scheduler that holds this lease runs jobs; the others wait paused and take over
when the leader stops renewing (it crashed, or was shut down and released the lease).

Taking the lease is one conditional UPDATE (or the first INSERT), so on SQLite and on
PostgreSQL exactly one of two racing schedulers gets it. Time comes from `utcnow()`, the
clock every other timestamp uses (and the one tests move).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Engine, case, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from newsletter.dbtypes import UTCDateTime, utcnow

#: The lease every scheduler of this project competes for.
LEADER = "scheduler"


class Lease(SQLModel, table=True):
    """Who holds a named lease, and until when (renewed by the holder's heartbeat)."""

    __tablename__ = "scheduler_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=255)
    acquired_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


def new_holder_id() -> str:
    """A name for this scheduler that says where it runs and is unique per start."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(
    engine: Engine,
    holder: str,
    ttl: timedelta,
    *,
    name: str = LEADER,
    now: datetime | None = None,
) -> bool:
    """Take or renew the lease for `ttl`; False while someone else holds an unexpired one."""
    now = now or utcnow()
    table = Lease.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        renewed = conn.execute(
            update(table)
            .where(table.c.name == name)
            .where((table.c.holder == holder) | (table.c.expires_at <= now))
            .values(
                holder=holder,
                expires_at=now + ttl,
                # Keep the start of an unbroken tenure; a takeover starts a new one.
                acquired_at=case((table.c.holder == holder, table.c.acquired_at), else_=now),
            )
        )
        if renewed.rowcount == 1:
            return True
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(table).values(name=name, holder=holder, acquired_at=now, expires_at=now + ttl)
            )
    except IntegrityError:  # the row exists and is held by another, unexpired
        return False
    return True


def release(engine: Engine, holder: str, *, name: str = LEADER) -> None:
    """Give the lease up at once (on shutdown) so a standby need not wait for it to expire."""
    table = Lease.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            update(table).where(table.c.name == name, table.c.holder == holder).values(expires_at=utcnow())
        )


def current(engine: Engine, *, name: str = LEADER) -> Lease | None:
    """The lease row as stored (None before any scheduler ran), for `jobs list`."""
    with Session(engine) as session:
        return session.get(Lease, name)
