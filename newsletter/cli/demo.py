"""`make demo`: the whole daily job on the bundled sample papers, in a throwaway data folder.

Imports the sample papers that ship with the package, adds a few subscribers with different
interests in different timezones, embeds the papers, runs the scheduler's own `dispatch`
job (file transport, so nothing leaves the machine), then prints what each person got and
writes an index.html linking every rendered email.

Each demo subscriber's send hour is the current hour in their timezone, so the real
scheduling rule (jobs/schedule.py) finds every one of them due right now; nothing is
faked for the demo. No network, no keys, nothing left running. Run: `python -m newsletter.cli.demo`.
"""

from __future__ import annotations

import html
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from newsletter.db import open_database, session_scope
from newsletter.dbtypes import utcnow
from newsletter.delivery.models import Delivery, DeliveryItem
from newsletter.papers.models import Paper
from newsletter.sample_data import PAPERS_PAGE
from newsletter.settings import Settings
from subscribers import service
from subscribers.models import Subscriber

#: The demo's own data folder: deleted and rebuilt on every run, never your real one.
DEMO_HOME = Path("var") / "demo"

#: (address, interests, timezone): different tastes, spread around the world.
DEMO_SUBSCRIBERS = (
    ("ada@example.org", "graph neural networks; message passing", "Europe/Berlin"),
    ("grace@example.org", "diffusion models for image and video generation", "America/New_York"),
    ("alan@example.org", "knowledge editing in large language models, LoRA", "Asia/Tokyo"),
    ("edsger@example.org", "network pruning; neural architecture search", "Europe/London"),
    ("hedy@example.org", "wireless networks, speech enhancement", "Australia/Sydney"),
)

err = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Outcome:
    """One demo subscriber's digest, as the table shows it."""

    email: str
    interests: str
    sent_at: str  # in the subscriber's own timezone
    status: str
    picked: int
    top_pick: str


def demo_settings(home: Path) -> Settings:
    """Settings of the demo: its own SQLite file and the file transport, whatever .env says."""
    return Settings(
        home=home,
        database_url=f"sqlite:///{(home / 'newsletter.db').resolve()}",
        transport="file",
        base_url="http://127.0.0.1:8000",
    )


def run(home: Path = DEMO_HOME) -> tuple[list[Outcome], Path]:
    """Build the demo in `home` and dispatch; returns the outcomes and the index page."""
    from jobs.digest import dispatch
    from newsletter.papers.importers import import_file
    from newsletter.ranking.service import embed_missing

    if home.exists():
        shutil.rmtree(home)
    settings = demo_settings(home)
    engine = open_database(settings)

    with _step("importing the bundled sample papers"), session_scope(engine) as session:
        imported = import_file(session, PAPERS_PAGE)
    err.print(f"  {imported.stats.new} papers")

    now = utcnow()
    with _step("adding demo subscribers"), session_scope(engine) as session:
        for email, interests, timezone in DEMO_SUBSCRIBERS:
            local_hour = now.astimezone(ZoneInfo(timezone)).hour
            data = service.build_create(
                email, interests, timezone=timezone, send_hour=local_hour, confirmed=True
            )
            service.create(session, data)

    with _step("embedding papers with all-MiniLM-L6-v2 (CPU)"), session_scope(engine) as session:
        embed_missing(session, settings)

    with _step("running the scheduler's dispatch job (file transport)"):
        report = dispatch(settings, now=now)
    err.print(f"  {report.summary()}")

    outcomes = _outcomes(engine)
    index = write_index(settings.home, outcomes)
    return outcomes, index


@contextmanager
def _step(what: str) -> Iterator[None]:
    """Say what is happening and how long it took (stderr, for people)."""
    started = time.perf_counter()
    err.print(f"• {what}…")
    yield
    err.print(f"  done in {time.perf_counter() - started:.1f} s")


def _outcomes(engine: Engine) -> list[Outcome]:
    outcomes = []
    with Session(engine) as session:
        for subscriber in session.exec(select(Subscriber).order_by(col(Subscriber.id))):
            delivery = session.exec(select(Delivery).where(Delivery.subscriber_id == subscriber.id)).first()
            items = []
            if delivery is not None:
                items = list(
                    session.exec(
                        select(DeliveryItem, Paper)
                        .join(Paper, col(Paper.id) == DeliveryItem.paper_id)
                        .where(DeliveryItem.delivery_id == delivery.id)
                        .order_by(col(DeliveryItem.rank))
                    )
                )
            sent = delivery.sent_at if delivery else None
            outcomes.append(
                Outcome(
                    email=subscriber.email,
                    interests="; ".join(subscriber.interests),
                    sent_at=(
                        f"{sent.astimezone(ZoneInfo(subscriber.timezone)):%a %H:%M} {subscriber.timezone}"
                        if sent
                        else "—"
                    ),
                    status=str(delivery.status) if delivery else "not due",
                    picked=len(items),
                    top_pick=items[0][1].title if items else "—",
                )
            )
    return outcomes


def write_index(home: Path, outcomes: list[Outcome]) -> Path:
    """Save each .eml's HTML part beside it and an index.html that links them all."""
    pages: dict[str, tuple[str, Path | None]] = {}
    for eml in sorted((home / "outbox").rglob("*.eml")):
        message = message_from_bytes(eml.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(preferencelist=("html",))
        if body is None:
            continue
        html_page = eml.with_suffix(".html")
        html_page.write_text(body.get_content(), encoding="utf-8")
        pages[str(message["To"]).split("<")[-1].rstrip(">").strip()] = (str(message["Subject"]), html_page)
    rows = []
    for outcome in outcomes:
        subject, page = pages.get(outcome.email, ("(no email: " + outcome.status + ")", None))
        link = (
            f'<a href="{html.escape(page.relative_to(home).as_posix())}">{html.escape(subject)}</a>'
            if page
            else html.escape(subject)
        )
        rows.append(
            f"<tr><td>{html.escape(outcome.email)}</td><td>{html.escape(outcome.interests)}</td>"
            f"<td>{outcome.picked}</td><td>{link}</td></tr>"
        )
    index = home / "index.html"
    index.write_text(
        "<!doctype html><meta charset=utf-8><title>newsletter demo</title>"
        "<style>body{font:16px system-ui;margin:2rem}td,th{padding:.4rem .8rem;"
        "border-bottom:1px solid #ddd;text-align:left}</style>"
        f"<h1>Demo digests, {datetime.now():%Y-%m-%d %H:%M}</h1>"
        "<table><tr><th>subscriber</th><th>interests</th><th>papers</th><th>email</th></tr>"
        + "".join(rows)
        + "</table>",
        encoding="utf-8",
    )
    return index


def main() -> int:
    """Run the demo and print the table (stdout) and where the emails are."""
    started = time.perf_counter()
    outcomes, index = run()
    table = Table(title="What each demo subscriber got")
    for column in ("subscriber", "interests", "sent at (their time)", "papers picked", "top pick"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        table.add_row(
            outcome.email, outcome.interests, outcome.sent_at, str(outcome.picked), outcome.top_pick
        )
    Console(width=max(120, Console().width), markup=False).print(table)
    print(f"\nEvery rendered email is linked from: {index.resolve()}")
    print(f"Raw messages (.eml) are in: {(index.parent / 'outbox').resolve()}")
    err.print(f"demo finished in {time.perf_counter() - started:.1f} s")
    return 0 if any(outcome.picked for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
