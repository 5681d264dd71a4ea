"""Digest throughput: rendering alone, and the whole send path to a loopback SendGrid.

    .venv/bin/python benchmarks/send.py [--subscribers 10000] [--papers 10] [--concurrency 8]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres] [--validate]

Every digest is recorded first (ranking is benchmarked by benchmarks/scale.py), then:

1. render only: `render_digest` for every recorded digest, from its stored rows — the
   ceiling of the send path in this process;
2. end to end: the real outbox (`send_digests`, what `newsletter send` and the workers run):
   each message is loaded, rendered, claimed, POSTed over keep-alive HTTP to
   tests/support/sendgrid_server.py running in its own process, and marked sent.

It prints both rates, the end-to-end rate as a share of render-only, and where the time of
the end-to-end run went per stage (wall seconds summed over the threads doing that stage:
the stages overlap, so the shares add up to more than 100 %), plus database commits and TCP
connections per message. With --database-url (PostgreSQL) a fresh database is created next
to the given one and dropped afterwards; the default is a SQLite file.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC = Path(os.environ.get("NEWSLETTER_SHARED", ROOT.parent / "shared")) / "specs/sendgrid/tsg_mail_v3.json"
API_KEY = "SG.benchmark"


def _seed(engine, subscribers: int, papers_each: int, day: date) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import Session

    from newsletter.delivery.models import Delivery, DeliveryItem
    from subscribers.models import Status, Subscriber
    from tests.support.papers import make_paper

    with Session(engine) as session:
        papers = [make_paper(i, upvotes=i) for i in range(60)]
        session.add_all(papers)
        session.flush()
        people = [
            Subscriber(
                email=f"reader{i}@example.org",
                email_key=f"reader{i}@example.org",
                interests=["graph neural networks", "diffusion models"],
                status=Status.ACTIVE,
            )
            for i in range(subscribers)
        ]
        session.add_all(people)
        session.flush()
        deliveries = [
            Delivery(
                subscriber_id=p.id, digest_date=day, message_id=f"<digest.{day:%Y%m%d}.{p.id}@example.org>"
            )
            for p in people
        ]
        session.add_all(deliveries)
        session.flush()
        session.add_all(
            DeliveryItem(
                delivery_id=d.id,
                paper_id=papers[(n + k) % len(papers)].id,
                rank=k + 1,
                score=0.9 - k / 100,
                matched_interest="graph neural networks",
                highlight="The sentence of the abstract that matched best.",
            )
            for n, d in enumerate(deliveries)
            for k in range(papers_each)
        )
        session.commit()


def _start_server(validate: bool) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "tests.support.sendgrid_server", str(SPEC), "--api-key", API_KEY]
    if not validate:
        args.append("--no-validate")
    server = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


@contextmanager
def _database(url: str | None, home: Path) -> Iterator[str]:
    """A fresh database: a SQLite file under `home`, or a new PostgreSQL database beside `url`."""
    if url is None:
        yield f"sqlite:///{home / 'bench.db'}"
        return
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = f"nl_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        from newsletter.db import engine_for

        engine_for.cache_clear()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Stages:
    """Wall time per send-path stage, summed over the threads that run it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[name] += time.perf_counter() - started
                    self.calls[name] += 1

        return timed

    def print(self, messages: int, wall: float) -> None:
        print(f"  {'stage':44s} {'calls':>7s} {'ms/msg':>7s} {'of wall':>8s}")
        for name, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            print(
                f"  {name:44s} {self.calls[name]:7d} {1000 * seconds / messages:7.2f} "
                f"{100 * seconds / wall:7.1f}%"
            )


def _instrument(stages: Stages) -> None:
    """Time each stage where the send path calls it (module attributes, looked up per call)."""
    import httpcore

    import newsletter.delivery.outbox as outbox
    import newsletter.delivery.transports.sendgrid as sendgrid

    outbox._load = stages.wrap("load rows, readers, items (main)", outbox._load)
    outbox.render_digest = stages.wrap("render: render_digest (main)", outbox.render_digest)
    outbox.build_mail = stages.wrap("mail: headers + tokens (main)", outbox.build_mail)
    outbox.Claims.claim = stages.wrap("claim: UPDATE … RETURNING (writer)", outbox.Claims.claim)  # type: ignore[method-assign]
    outbox.record_answers = stages.wrap("mark: answers (writer)", outbox.record_answers)
    outbox._Pass._write_once = stages.wrap(  # type: ignore[method-assign]
        "writer: marks + claims, one commit", outbox._Pass._write_once
    )
    sendgrid.request_body = stages.wrap("body: v3 JSON (HTTP workers)", sendgrid.request_body)
    sendgrid.SendGridTransport._post = stages.wrap(  # type: ignore[method-assign]
        "POST /v3/mail/send (HTTP workers)", sendgrid.SendGridTransport._post
    )
    connect = httpcore._sync.connection.HTTPConnection._connect

    def counted(self: Any, request: Any) -> Any:
        stages.calls["TCP connections opened"] += 1
        return connect(self, request)

    httpcore._sync.connection.HTTPConnection._connect = counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=10, help="papers per digest")
    parser.add_argument("--concurrency", type=int, default=8, help="NEWSLETTER_SENDGRID_CONCURRENCY")
    parser.add_argument("--database-url", help="a PostgreSQL server to create a scratch database on")
    parser.add_argument("--validate", action="store_true", help="server validates each body (slower)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    server, url = _start_server(args.validate)
    try:
        with _database(args.database_url, home) as database_url:
            os.environ.update(
                {
                    "NEWSLETTER_HOME": str(home),
                    "NEWSLETTER_DATABASE_URL": database_url,
                    "NEWSLETTER_SECRET_KEY": "benchmark-secret-key-of-some-length",
                    "NEWSLETTER_TRANSPORT": "sendgrid",
                    "NEWSLETTER_SENDGRID_HOST": url,
                    "NEWSLETTER_SENDGRID_API_KEY": API_KEY,
                    "NEWSLETTER_SENDGRID_CONCURRENCY": str(args.concurrency),
                }
            )
            _run(args)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
        print(f"server: {err.strip()}")


def _run(args: argparse.Namespace) -> None:
    from sqlalchemy import event
    from sqlmodel import Session, select

    from jobs.send import send_digests
    from newsletter.db import open_database, upgrade
    from newsletter.delivery.models import Delivery
    from newsletter.delivery.outbox import _load
    from newsletter.digest.render import COMPILE_COUNTS, render_digest
    from newsletter.papers.queries import trending as trending_papers
    from newsletter.settings import Settings

    settings = Settings()
    engine = open_database(settings) if settings.resolved_database_url.startswith("sqlite") else None
    if engine is None:
        from newsletter.db import engine_for

        engine = engine_for(settings.resolved_database_url)
        upgrade(engine)
    day = datetime.now(UTC).date()
    _seed(engine, args.subscribers, args.papers, day)
    where = engine.dialect.name

    with Session(engine, expire_on_commit=False) as session:
        rows = list(session.exec(select(Delivery).order_by(Delivery.id)))  # type: ignore[arg-type]
        trending = trending_papers(session, day)
    readers, items = _load(engine, rows, {})
    started = time.perf_counter()
    size = 0
    for row in rows:
        rendered = render_digest(
            settings, readers[row.subscriber_id], items[row.id or 0], digest_date=day, trending=trending
        )
        size += len(rendered.html)
    render_s = time.perf_counter() - started
    render_rate = len(rows) / render_s
    print(
        f"render only: {len(rows)} digests in {render_s:.1f} s = {render_rate:,.0f} emails/s "
        f"(mean HTML {size / len(rows) / 1024:.1f} KB, {args.papers} papers each)"
    )

    stages = Stages()
    _instrument(stages)
    event.listen(engine, "commit", lambda conn: stages.calls.update(["database commits"]))
    started = time.perf_counter()
    report = send_digests(engine, settings, digest_date=day)
    send_s = time.perf_counter() - started
    rate = report.sent / send_s
    print(
        f"end to end: {report.sent} sent, {report.failed} failed in {send_s:.1f} s = {rate:,.0f} emails/s "
        f"= {100 * rate / render_rate:.0f} % of render only ({where}, concurrency {args.concurrency}, "
        f"server in its own process, validation {'on' if args.validate else 'off'})"
    )
    stages.print(max(report.sent, 1), send_s)
    for name in ("database commits", "TCP connections opened"):
        print(f"  {name}: {stages.calls[name]} ({stages.calls[name] / max(report.sent, 1):.3f} per message)")
    print("MJML compiles this run: " + ", ".join(f"{k} ×{v}" for k, v in sorted(COMPILE_COUNTS.items())))


if __name__ == "__main__":
    main()
