"""`newsletter subscribers …`: add, list, show, edit, remove, import and export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.common import FormatOption, console, database
from newsletter.cli.output import Format, emit, emit_one
from newsletter.errors import UserError
from subscribers import service
from subscribers.models import Status, SubscriberUpdate
from subscribers.profile import parse_interests, parse_weekday, validate_hour, validate_max_papers

app = typer.Typer(help="Manage subscribers: add, list, edit, import/export, erase.", no_args_is_help=True)

LIST_COLUMNS = ["email", "status", "interests", "timezone", "send_hour", "frequency", "max_papers"]

Interests = Annotated[
    str,
    typer.Option(
        "--interests",
        "-i",
        help='Comma/semicolon separated phrases, e.g. "graph neural networks, LoRA". '
        '"author: Name" follows an author; "-topic" excludes a topic.',
    ),
]
Timezone = Annotated[str, typer.Option(help="IANA timezone of the send hour.")]
Hour = Annotated[int, typer.Option("--hour", help="Local hour 0–23 the digest goes out.")]
Frequency = Annotated[str, typer.Option(help="daily or weekly.")]
Weekday = Annotated[str, typer.Option(help="Day of weekly digests: monday…sunday.")]
MaxPapers = Annotated[int, typer.Option("--max-papers", help="At most this many papers (1–50).")]


def _report(row: dict[str, object], fmt: Format, message: str) -> None:
    """A sentence for people, or the changed record for scripts."""
    if fmt == Format.TABLE:
        console.print(message, soft_wrap=True)
    else:
        emit_one(row, fmt)


@app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
    interests: Interests,
    timezone: Timezone = "UTC",
    hour: Hour = 7,
    frequency: Frequency = "daily",
    weekday: Weekday = "monday",
    max_papers: MaxPapers = 10,
    send_empty: Annotated[
        bool, typer.Option("--send-empty", help="Send a short note on days with no match.")
    ] = False,
    confirmed: Annotated[
        bool,
        typer.Option("--confirmed", help="Mark active now (skip double opt-in; you vouch)."),
    ] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Add a subscriber. Without --confirmed they stay pending until they confirm."""
    data = service.build_create(
        email,
        interests,
        timezone=timezone,
        send_hour=hour,
        frequency=frequency,
        weekday=weekday,
        max_papers=max_papers,
        send_empty=send_empty,
        confirmed=confirmed,
    )
    with database() as session:
        subscriber = service.create(session, data)
        row = service.public(subscriber)
    hint = (
        f" Nothing is emailed yet: `newsletter subscribers send-confirmation {row['email']}` "
        "mails the confirmation link."
        if row["status"] == Status.PENDING
        else ""
    )
    _report(row, fmt, f"Added {row['email']} ({row['status']}).{hint}")


@app.command("send-confirmation")
def send_confirmation(
    emails: Annotated[
        list[str] | None, typer.Argument(help="Pending addresses; none: every pending one.")
    ] = None,
) -> None:
    """Email the confirmation link to pending subscribers (again), through the transport.

    The daily cap per address (NEWSLETTER_CONFIRMATIONS_PER_DAY) still applies; addresses that
    are not pending get nothing.

    Examples:

      newsletter subscribers send-confirmation ada@example.org

      newsletter subscribers send-confirmation        # every pending subscriber
    """
    from newsletter.delivery.confirmation import send_confirmation as send
    from newsletter.settings import get_settings

    settings = get_settings()
    sent = held = 0
    with database(settings) as session:
        people = (
            [service.require(session, email) for email in emails]
            if emails
            else service.listing(session, Status.PENDING)
        )
        for person in people:
            if person.status != Status.PENDING:
                console.print(f"{person.email} is {person.status}, not pending: nothing sent.")
                held += 1
            elif send(session, settings, person):
                sent += 1
            else:
                console.print(f"{person.email}: held back (daily cap reached, or the transport failed).")
                held += 1
    console.print(f"{sent} confirmation emails sent, {held} not sent.")


@app.command("list")
def list_(
    status: Annotated[Status | None, typer.Option(help="Only this status.")] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List subscribers (oldest first)."""
    with database() as session:
        rows = [service.public(s) for s in service.listing(session, status)]
    emit(rows, fmt, LIST_COLUMNS, title=f"{len(rows)} subscribers")


@app.command("show")
def show(email: str, fmt: FormatOption = Format.TABLE) -> None:
    """Show everything stored about one subscriber."""
    with database() as session:
        emit_one(service.public(service.require(session, email)), fmt)


@app.command("edit")
def edit(
    email: str,
    interests: Annotated[str | None, typer.Option("--interests", "-i")] = None,
    timezone: Annotated[str | None, typer.Option()] = None,
    hour: Annotated[int | None, typer.Option("--hour")] = None,
    frequency: Annotated[str | None, typer.Option()] = None,
    weekday: Annotated[str | None, typer.Option()] = None,
    max_papers: Annotated[int | None, typer.Option("--max-papers")] = None,
    send_empty: Annotated[bool | None, typer.Option("--send-empty/--no-send-empty")] = None,
    status: Annotated[Status | None, typer.Option(help="e.g. paused, active, unsubscribed.")] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Change a subscriber's preferences or status; only the options given change."""
    changes: dict[str, object] = {}
    if interests is not None:
        changes["interests"] = parse_interests(interests)
    if timezone is not None:
        changes["timezone"] = timezone
    if hour is not None:
        changes["send_hour"] = validate_hour(hour)
    if frequency is not None:
        if frequency.lower() not in ("daily", "weekly"):
            raise UserError(f"unknown frequency {frequency!r}; use daily or weekly")
        changes["frequency"] = frequency.lower()
    if weekday is not None:
        changes["weekday"] = parse_weekday(weekday)
    if max_papers is not None:
        changes["max_papers"] = validate_max_papers(max_papers)
    if send_empty is not None:
        changes["send_empty"] = send_empty
    if status is not None:
        changes["status"] = status
    if not changes:
        raise UserError("nothing to change; pass e.g. --interests, --hour or --status")
    with database() as session:
        subscriber = service.require(session, email)
        service.update(session, subscriber, SubscriberUpdate.model_validate(changes))
        row = service.public(subscriber)
    _report(row, fmt, f"Updated {row['email']}.")


@app.command("remove")
def remove(
    email: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a subscriber and all their data (feedback, delivery history)."""
    with database() as session:
        subscriber = service.require(session, email)
        if not yes and not typer.confirm(f"Erase {subscriber.email} and all their data?"):
            raise typer.Abort()
        service.erase(session, subscriber)
    console.print(f"Erased {email}.")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="CSV with an email column (see README).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row, write nothing.")] = False,
) -> None:
    """Import subscribers from CSV: good rows are added, bad rows reported by line."""
    rows = service.read_csv(path)
    with database() as session:
        report = service.import_rows(session, rows)
        if dry_run:
            session.rollback()
    for line, reason in report.rejected:
        console.print(f"line {line}: rejected: {reason}")
    verb = "would add" if dry_run else "added"
    console.print(f"{len(report.added)} {verb}, {len(report.rejected)} rejected.")


@app.command("export")
def export(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="csv (re-importable) or json.")] = Format.CSV,
) -> None:
    """Export every subscriber (for backups or moving to another instance)."""
    with database() as session:
        subscribers = service.listing(session)
        if fmt == Format.JSON:
            emit([service.public(s) for s in subscribers], fmt, service.CSV_COLUMNS)
        else:
            emit([service.csv_row(s) for s in subscribers], Format.CSV, service.CSV_COLUMNS)
