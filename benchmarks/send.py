"""Digest throughput: emails rendered per second, and sent per second to a loopback SendGrid.

    .venv/bin/python benchmarks/send.py [--subscribers 10000] [--papers 10] [--concurrency 8] [--validate]

1. render: `render_digest` for every subscriber (10 papers each, trending section on).
2. send: the real outbox (`send_digests`) on a SQLite database where every digest is already
   recorded (ranking is benchmarked by the ranking issue), so each message is rendered,
   claimed, POSTed to tests/support/sendgrid_server.py running in its own process, and
   marked sent — the same path as `newsletter send`.
Prints the figures and how many times each MJML template was compiled (once per run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

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
        deliveries = [Delivery(subscriber_id=p.id, digest_date=day) for p in people]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=10, help="papers per digest")
    parser.add_argument("--concurrency", type=int, default=8, help="NEWSLETTER_SENDGRID_CONCURRENCY")
    parser.add_argument("--validate", action="store_true", help="server validates each body (slower)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    server, url = _start_server(args.validate)
    os.environ.update(
        {
            "NEWSLETTER_HOME": str(home),
            "NEWSLETTER_SECRET_KEY": "benchmark",
            "NEWSLETTER_TRANSPORT": "sendgrid",
            "NEWSLETTER_SENDGRID_HOST": url,
            "NEWSLETTER_SENDGRID_API_KEY": API_KEY,
            "NEWSLETTER_SENDGRID_CONCURRENCY": str(args.concurrency),
        }
    )
    from sqlmodel import Session, select

    from jobs.send import send_digests
    from newsletter.db import open_database
    from newsletter.digest.context import DigestItem
    from newsletter.digest.render import COMPILE_COUNTS, render_digest
    from newsletter.papers.models import Paper
    from newsletter.papers.queries import trending as trending_papers
    from newsletter.settings import Settings
    from subscribers.models import Subscriber

    try:
        settings = Settings()
        engine = open_database(settings)
        day = datetime.now(UTC).date()
        _seed(engine, args.subscribers, args.papers, day)

        with Session(engine) as session:
            people = list(session.exec(select(Subscriber)))
            papers = list(session.exec(select(Paper)))
            trending = trending_papers(session, day)
        started = time.perf_counter()
        size = 0
        for n, person in enumerate(people):
            items = [
                DigestItem(papers[(n + k) % len(papers)], "graph neural networks", "A highlight.")
                for k in range(args.papers)
            ]
            size += len(render_digest(settings, person, items, digest_date=day, trending=trending).html)
        render_s = time.perf_counter() - started
        print(
            f"render: {len(people)} digests in {render_s:.1f} s = {len(people) / render_s:,.0f} emails/s "
            f"(mean HTML {size / len(people) / 1024:.1f} KB, {args.papers} papers each)"
        )

        started = time.perf_counter()
        report = send_digests(engine, settings, digest_date=day)
        send_s = time.perf_counter() - started
        print(
            f"send: {report.sent} sent, {report.failed} failed in {send_s:.1f} s = "
            f"{report.sent / send_s:,.0f} emails/s through the outbox to loopback SendGrid "
            f"(concurrency {args.concurrency}, server validation {'on' if args.validate else 'off'})"
        )
        print("MJML compiles this run: " + ", ".join(f"{k} ×{v}" for k, v in sorted(COMPILE_COUNTS.items())))
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
        print(f"server: {err.strip()}")


if __name__ == "__main__":
    main()
