"""`newsletter digest preview`, `newsletter send`, `newsletter deliveries …`, `newsletter stats`.

Preview and send rank papers (torch), so the ranking and rendering modules are imported
inside the commands; `deliveries` and `stats` only read the outbox and start fast.
"""

from __future__ import annotations

import webbrowser
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import col, func, select

from newsletter.cli.common import FormatOption, console, database, progress
from newsletter.cli.output import Format, emit, emit_one
from newsletter.db import open_database
from newsletter.dbtypes import utcnow
from newsletter.errors import UserError
from newsletter.settings import get_settings

app = typer.Typer(help="See a digest before anyone gets it.", no_args_is_help=True)
deliveries_app = typer.Typer(help="The outbox: one row per subscriber and digest date.", no_args_is_help=True)

DateOption = Annotated[
    str | None,
    typer.Option("--date", "-d", help="Digest date, YYYY-MM-DD (default: today, UTC)."),
]


def parse_date(value: str | None) -> date:
    """`--date` as a date; today (UTC) when not given."""
    if value is None:
        return utcnow().date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--date {value!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-27") from None


@app.command()
def preview(
    subscriber: Annotated[
        str | None, typer.Option("--subscriber", "-s", help="Preview this subscriber's digest.")
    ] = None,
    interests: Annotated[
        str | None,
        typer.Option("--interests", "-i", help='Preview for made-up interests: "llm agents, diffusion".'),
    ] = None,
    day: DateOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
    text: Annotated[bool, typer.Option("--text", help="The plain-text part instead of HTML.")] = False,
    open_: Annotated[bool, typer.Option("--open", help="Open the result in a browser.")] = False,
) -> None:
    """Render a digest exactly as it would be sent, without recording or sending anything.

    Examples:

      newsletter digest preview --subscriber ada@example.org --out ada.html --open

      newsletter digest preview --interests "graph neural networks, protein folding" --text
    """
    if (subscriber is None) == (interests is None):
        raise UserError('give exactly one of --subscriber EMAIL or --interests "a, b"')
    from jobs.compose import items_for, recommend
    from newsletter.digest.render import render_digest
    from newsletter.papers.queries import trending
    from newsletter.ranking.service import recommend_for_interests
    from subscribers.models import Subscriber
    from subscribers.service import require

    settings = get_settings()
    digest_date = parse_date(day)
    with database(settings) as session:
        if subscriber is not None:
            person = require(session, subscriber)
            picks = recommend(session, settings, [person]).get(person.id or 0, [])
        else:
            wanted = [part.strip() for part in (interests or "").split(",") if part.strip()]
            if not wanted:
                raise UserError("--interests is empty; list phrases separated by commas")
            person = Subscriber(id=0, email="preview@example.org", email_key="preview", interests=wanted)
            picks = recommend_for_interests(session, settings, wanted)
        items = items_for(session, picks)
        rendered = render_digest(
            settings,
            person,
            items,
            digest_date=digest_date,
            trending=trending(session, digest_date),
        )
    body = rendered.text if text else rendered.html
    if out is None and open_:
        out = settings.home / "preview" / f"digest-{digest_date}.{'txt' if text else 'html'}"
    if out is None:
        typer.echo(body, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(body, encoding="utf-8")
        console.print(
            f"{rendered.subject} — {len(items)} papers, {len(rendered.html.encode()) // 1024} KB HTML → {out}",
            soft_wrap=True,
        )
        if open_:
            webbrowser.open(out.resolve().as_uri())


def send(
    day: DateOption = None,
    subscriber: Annotated[
        list[str] | None,
        typer.Option("--subscriber", "-s", help="Only this address (repeatable); ignores the weekday rule."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Rank and render, then report; record and send nothing.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Send at most N digests this run.")
    ] = None,
    test_to: Annotated[
        str | None,
        typer.Option(
            "--test-to",
            metavar="ADDRESS",
            help="Send one reader's digest (--subscriber, else the first active reader) to "
            "ADDRESS only, marked [Test]; nothing is recorded and its links act for nobody.",
        ),
    ] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Send the day's digest to every subscriber due, exactly once each.

    Who is due follows the scheduler's rule: a reader's digest date is a date in their own
    timezone, weekly readers only on their weekday. Without --date each reader gets the
    digest of their own today (readers far apart may be on different dates: one report line,
    and with --format json one object, per date). Each digest is recorded before it is sent,
    so running this twice for one date sends nothing the second time, and a run that was
    killed picks up where it stopped. The transport is NEWSLETTER_TRANSPORT (file, smtp or
    sendgrid).

    A dry run fails like the real run would when the transport cannot send (e.g.
    NEWSLETTER_TRANSPORT=sendgrid without a key). On a terminal a bar shows the sending; in a
    log a line every few seconds does.

    Examples:

      newsletter send --dry-run

      newsletter send --test-to you@example.org --subscriber ada@example.org

      newsletter send --date 2026-11-27 --subscriber ada@example.org
    """
    from jobs.due import due_today, local_today
    from jobs.send import send_digests
    from subscribers.service import require

    settings = get_settings()
    engine = open_database(settings)
    now = utcnow()
    if test_to is not None:
        _send_test(test_to, subscriber or [], day)
        return
    runs: list[tuple[date, list[int] | None]]
    with database(settings) as session:
        people = [require(session, email) for email in subscriber or []]
        for person in people:
            if person.status != "active":
                raise UserError(f"{person.email} is {person.status}; only active subscribers get digests")
        if day is not None:
            runs = [(parse_date(day), [p.id for p in people if p.id] if people else None)]
        elif people:
            by_date: dict[date, list[int]] = {}
            for person in people:
                by_date.setdefault(local_today(person, now), []).append(person.id or 0)
            runs = sorted((d, ids) for d, ids in by_date.items())
        else:
            groups = due_today(session, now)
            runs = [(d, [s.id for s in subs if s.id]) for d, subs in sorted(groups.items())]
            runs = runs or [(now.date(), None)]
    with progress("sending digests") as report_progress:
        reports = [
            send_digests(
                engine,
                settings,
                digest_date=digest_date,
                subscriber_ids=ids,
                dry_run=dry_run,
                limit=limit,
                progress=report_progress,
            )
            for digest_date, ids in runs
        ]
    for report in reports:
        console.print(report.summary(), soft_wrap=True)
        for failure in report.failures:
            console.print(f"  delivery {failure['delivery_id']} failed: {failure['error']}", soft_wrap=True)
    if fmt == Format.JSON and len(reports) == 1:
        emit_one(reports[0].as_dict(), fmt)
    elif fmt == Format.JSON:
        emit([r.as_dict() for r in reports], fmt, list(reports[0].as_dict()))
    elif dry_run:
        previews = [p for r in reports for p in r.previews]
        if previews:
            emit(previews, fmt, ["email", "papers", "html_bytes", "subject"], title="Would send")


def _send_test(address: str, readers: list[str], day: str | None) -> None:
    """`send --test-to`: one reader's digest, to the operator only."""
    from jobs.send import send_test
    from subscribers.models import Status, Subscriber
    from subscribers.service import require

    if len(readers) > 1:
        raise UserError("--test-to sends one reader's digest; give at most one --subscriber")
    settings = get_settings()
    with database(settings) as session:
        if readers:
            reader = require(session, readers[0])
        else:
            first = session.exec(
                select(Subscriber).where(Subscriber.status == Status.ACTIVE).order_by(col(Subscriber.id))
            ).first()
            if first is None:
                raise UserError("no active subscriber to take a digest from; give --subscriber EMAIL")
            reader = first
        session.expunge(reader)
    subject, count = send_test(
        open_database(settings), settings, to=address, subscriber=reader, digest_date=parse_date(day)
    )
    console.print(
        f"Sent {reader.email}'s digest ({count} papers) to {address} via {settings.transport}: {subject}",
        soft_wrap=True,
    )


@deliveries_app.command("list")
def list_(
    day: DateOption = None,
    status: Annotated[
        str | None,
        typer.Option(help="pending, sending, sent, failed, skipped-nothing-new, skipped-missed."),
    ] = None,
    all_dates: Annotated[bool, typer.Option("--all", help="Every date, not just one.")] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List outbox rows (default: today's), with status, attempts and the last error."""
    from newsletter.delivery.models import Delivery, DeliveryItem, DeliveryStatus
    from subscribers.models import Subscriber

    if status is not None and status not in {s.value for s in DeliveryStatus}:
        raise UserError(f"--status {status!r} is not a status; use one of {', '.join(DeliveryStatus)}")
    with database() as session:
        papers = select(func.count()).where(DeliveryItem.delivery_id == Delivery.id).scalar_subquery()
        query = (
            select(Delivery, Subscriber.email, papers)
            .join(Subscriber, col(Subscriber.id) == col(Delivery.subscriber_id))
            .order_by(col(Delivery.digest_date).desc(), col(Delivery.id))
        )
        if not all_dates:
            query = query.where(Delivery.digest_date == parse_date(day))
        if status is not None:
            query = query.where(Delivery.status == status)
        rows = [
            {
                "id": d.id,
                "digest_date": d.digest_date.isoformat(),
                "email": email,
                "status": d.status,
                "papers": count,
                "attempts": d.attempts,
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                "provider_message_id": d.provider_message_id,
                "last_error": d.last_error,
            }
            for d, email, count in session.exec(query)
        ]
    emit(rows, fmt, ["id", "digest_date", "email", "status", "papers", "attempts", "last_error"])


@deliveries_app.command("retry")
def retry_(
    day: DateOption = None, all_dates: Annotated[bool, typer.Option("--all", help="Every date.")] = False
) -> None:
    """Send failed digests (and ones held in flight by in_flight_policy=hold) again."""
    from newsletter.delivery.outbox import retry

    settings = get_settings()
    reports = retry(open_database(settings), settings, digest_date=None if all_dates else parse_date(day))
    if not reports:
        console.print("nothing to retry")
    for report in reports:
        console.print(report.summary(), soft_wrap=True)


def stats(
    days: Annotated[int, typer.Option(min=1, help="How many recent days.")] = 14,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Per digest date: due (rows recorded), sent, skipped, failed, unfinished."""
    from newsletter.delivery.outbox import stats as outbox_stats

    with database() as session:
        rows = outbox_stats(session, days=days)
    emit(rows, fmt, ["date", "due", "sent", "skipped", "failed", "unfinished"], title="Digests")
