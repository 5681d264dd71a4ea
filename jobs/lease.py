"""A leader lease in the database, so that of several schedulers on one database one works.

APScheduler 3 does not coordinate schedulers that share a job store: each would run every
job. The scheduler that holds this lease runs jobs; the others wait paused and take over
when the leader stops renewing (it crashed, or was shut down and released the lease).

Taking the lease is one conditional UPDATE (or the first INSERT), so on SQLite and on
PostgreSQL exactly one of two racing schedulers gets it. Time comes from `utcnow()`, the
clock every other timestamp uses (and the one tests move).

Every takeover starts a new `generation`. A job started by a leader runs in that leader's
`Tenure` (holder + generation, the `LEADING` context variable), and `fence(tenure)` is the
SQL condition "that tenure still holds an unexpired lease": the outbox adds it to every
claim, so a leader that lost its lease while a job was running (a stalled process, a
database it could no longer reach) claims nothing more once another leader has taken over.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, case, exists, insert, update
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
    generation: int = Field(default=1, description="+1 at every takeover: a tenure's fencing token")
    acquired_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


@dataclass(frozen=True)
class Tenure:
    """One unbroken holding of a lease: who, and which takeover."""

    holder: str
    generation: int


#: The tenure a scheduler job runs under (set by the scheduler's executor; None outside).
LEADING: ContextVar[Tenure | None] = ContextVar("LEADING", default=None)


def acquire(
    engine: Engine,
    holder: str,
    ttl: timedelta,
    *,
    name: str = LEADER,
    now: datetime | None = None,
) -> Tenure | None:
    """Take or renew the lease for `ttl`; None while someone else holds an unexpired one."""
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
                # Keep the start and generation of an unbroken tenure; a takeover starts anew.
                acquired_at=case((table.c.holder == holder, table.c.acquired_at), else_=now),
                generation=case((table.c.holder == holder, table.c.generation), else_=table.c.generation + 1),
            )
            .returning(table.c.generation)
        ).scalar()
    if renewed is not None:
        return Tenure(holder, renewed)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(table).values(
                    name=name, holder=holder, generation=1, acquired_at=now, expires_at=now + ttl
                )
            )
    except IntegrityError:  # the row exists and is held by another, unexpired
        return None
    return Tenure(holder, 1)


def fence(tenure: Tenure, *, name: str = LEADER) -> Callable[[], ColumnElement[bool]]:
    """The SQL condition "`tenure` still holds the lease", evaluated at the time of each use."""
    table = Lease.__table__  # type: ignore[attr-defined]

    def still_leading() -> ColumnElement[bool]:
        return exists().where(
            table.c.name == name,
            table.c.holder == tenure.holder,
            table.c.generation == tenure.generation,
            table.c.expires_at > utcnow(),
        )

    return still_leading


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
