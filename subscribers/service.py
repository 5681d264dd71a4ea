"""Subscriber operations on the database, shared by the CLI, the web app and jobs.

Every function validates first and writes second, so bad input never leaves half a row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, func, select

from newsletter.dbtypes import utcnow
from newsletter.errors import UserError
from subscribers.models import (
    Frequency,
    Status,
    Subscriber,
    SubscriberCreate,
    SubscriberPublic,
    SubscriberUpdate,
)
from subscribers.profile import (
    email_key,
    normalize_email,
    parse_interests,
    parse_weekday,
    validate_hour,
    validate_max_papers,
    validate_timezone,
)

#: Columns of `subscribers export --format csv`, also accepted by `subscribers import`.
CSV_COLUMNS = (
    "email",
    "interests",
    "timezone",
    "send_hour",
    "frequency",
    "weekday",
    "max_papers",
    "send_empty",
    "status",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
)


def build_create(
    email: str,
    interests: str | list[str],
    *,
    timezone: str = "UTC",
    send_hour: int = 7,
    frequency: str = "daily",
    weekday: str | int = 0,
    max_papers: int = 10,
    send_empty: bool = False,
    confirmed: bool = False,
) -> SubscriberCreate:
    """Validate raw input into a SubscriberCreate (UserError on the first problem)."""
    try:
        freq = Frequency(frequency.strip().lower())
    except ValueError:
        raise UserError(f"unknown frequency {frequency!r}; use daily or weekly") from None
    return SubscriberCreate(
        email=normalize_email(email),
        interests=parse_interests(interests),
        timezone=validate_timezone(timezone),
        send_hour=validate_hour(send_hour),
        frequency=freq,
        weekday=parse_weekday(weekday),
        max_papers=validate_max_papers(max_papers),
        send_empty=send_empty,
        status=Status.ACTIVE if confirmed else Status.PENDING,
    )


def find(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address (any case), or None."""
    key = email_key(email.strip())
    return session.exec(select(Subscriber).where(Subscriber.email_key == key)).first()


def require(session: Session, email: str) -> Subscriber:
    """The subscriber with this address, or a UserError naming it."""
    subscriber = find(session, normalize_email(email))
    if subscriber is None:
        raise UserError(f"no subscriber {email!r}; see `newsletter subscribers list`")
    return subscriber


def create(session: Session, data: SubscriberCreate) -> Subscriber:
    """Insert a new subscriber; an existing address is an error and changes nothing."""
    if find(session, data.email) is not None:
        raise UserError(f"{data.email} is already subscribed; use `subscribers edit` to change it")
    now = utcnow()
    subscriber = Subscriber.model_validate(
        data,
        update={
            "email_key": email_key(data.email),
            "created_at": now,
            "updated_at": now,
            "confirmed_at": now if data.status == Status.ACTIVE else None,
        },
    )
    session.add(subscriber)
    session.flush()
    return subscriber


def update(session: Session, subscriber: Subscriber, changes: SubscriberUpdate) -> Subscriber:
    """Apply the fields set in `changes`, keeping status timestamps truthful."""
    values = changes.model_dump(exclude_unset=True, exclude_none=True)
    if "interests" in values:
        values["interests"] = parse_interests(values["interests"])
    if "timezone" in values:
        values["timezone"] = validate_timezone(values["timezone"])
    new_status = values.get("status")
    now = utcnow()
    if new_status == Status.ACTIVE and subscriber.confirmed_at is None:
        subscriber.confirmed_at = now
    if new_status == Status.UNSUBSCRIBED and subscriber.status != Status.UNSUBSCRIBED:
        subscriber.unsubscribed_at = now
    for name, value in values.items():
        setattr(subscriber, name, value)
    subscriber.updated_at = now
    session.add(subscriber)
    session.flush()
    return subscriber


def erase(session: Session, subscriber: Subscriber) -> None:
    """Delete the person and everything stored about them (feedback, deliveries cascade)."""
    session.delete(subscriber)
    session.flush()


def listing(session: Session, status: Status | None = None) -> list[Subscriber]:
    """Subscribers in sign-up order, optionally of one status."""
    query = select(Subscriber).order_by(col(Subscriber.id))
    if status is not None:
        query = query.where(Subscriber.status == status)
    return list(session.exec(query))


def search(
    session: Session, text: str = "", status: Status | None = None, *, limit: int = 50, offset: int = 0
) -> tuple[list[Subscriber], int]:
    """Subscribers whose address contains `text` (any case), newest first, one page of
    `limit`; and how many match in all."""
    query = select(Subscriber)
    needle = text.strip().casefold()
    if needle:
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(col(Subscriber.email_key).like(f"%{escaped}%", escape="\\"))
    if status is not None:
        query = query.where(Subscriber.status == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Subscriber.id).desc()).offset(offset).limit(limit))
    return list(rows), total


def count(session: Session) -> int:
    """How many subscribers exist (any status)."""
    return session.exec(select(func.count()).select_from(Subscriber)).one()


def public(subscriber: Subscriber) -> dict[str, object]:
    """The stable JSON shape of a subscriber."""
    return SubscriberPublic.model_validate(subscriber).model_dump(mode="json")


def csv_row(subscriber: Subscriber) -> dict[str, object]:
    """One export row; interests joined with '; ' so the file re-imports as it was."""
    data = public(subscriber)
    data["interests"] = "; ".join(subscriber.interests)
    return {name: data[name] for name in CSV_COLUMNS}


@dataclass
class ImportReport:
    """What an import did: rows added, and each rejected row with its line and reason."""

    added: list[str] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "y", "on"}


def _row_to_create(row: dict[str, str | None]) -> SubscriberCreate:
    def text(name: str, default: str) -> str:
        value = (row.get(name) or "").strip()
        return value or default

    def number(name: str, default: int) -> int:
        value = text(name, str(default))
        try:
            return int(value)
        except ValueError:
            raise UserError(f"{name} {value!r} is not a whole number") from None

    status = text("status", "pending").lower()
    if status not in {"pending", "active"}:
        raise UserError(f"status {status!r} cannot be imported; use pending or active")
    return build_create(
        text("email", ""),
        text("interests", ""),
        timezone=text("timezone", "UTC"),
        send_hour=number("send_hour", 7),
        frequency=text("frequency", "daily"),
        weekday=text("weekday", "0"),
        max_papers=number("max_papers", 10),
        send_empty=_truthy(row.get("send_empty")),
        confirmed=status == "active" or _truthy(row.get("confirmed")),
    )


def read_csv(path: Path) -> list[tuple[int, dict[str, str | None]]]:
    """The rows of a subscriber CSV with their line numbers, or a UserError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it as UTF-8 CSV ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "email" not in [f.strip().lower() for f in reader.fieldnames]:
        raise UserError(f"{path}: not a subscriber CSV; the header must have an 'email' column")
    try:
        rows = [(reader.line_num, {(k or "").strip().lower(): v for k, v in row.items()}) for row in reader]
    except csv.Error as exc:
        raise UserError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    return rows


def import_rows(session: Session, rows: list[tuple[int, dict[str, str | None]]]) -> ImportReport:
    """Add every valid new row; reject the rest with their line number and reason."""
    report = ImportReport()
    seen: set[str] = set()
    for line, row in rows:
        try:
            data = _row_to_create(row)
            key = email_key(data.email)
            if key in seen:
                raise UserError(f"{data.email} appears twice in the file")
            seen.add(key)
            create(session, data)
        except UserError as exc:
            report.rejected.append((line, exc.message))
            continue
        report.added.append(data.email)
    return report
