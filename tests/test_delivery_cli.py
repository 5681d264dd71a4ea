"""`newsletter deliveries` and `newsletter stats`: fast, torch-free reads of the outbox."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

from sqlmodel import Session

from newsletter.delivery.models import Delivery, DeliveryStatus
from subscribers.models import Status, Subscriber
from tests.support.requirements import ROOT


def _rows(session: Session) -> None:
    people = [
        Subscriber(email=f"p{i}@example.org", email_key=f"p{i}@example.org", status=Status.ACTIVE)
        for i in range(3)
    ]
    session.add_all(people)
    session.flush()
    statuses = [DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED]
    for person, status in zip(people, statuses, strict=True):
        session.add(
            Delivery(
                subscriber_id=person.id,
                digest_date=date(2026, 11, 26),
                status=status,
                last_error="SendGrid 400: bad" if status == DeliveryStatus.FAILED else None,
            )
        )
    session.commit()


def test_deliveries_list_filters_by_date_and_status(session: Session, cli) -> None:  # type: ignore[no-untyped-def]
    _rows(session)
    result = cli("deliveries", "list", "--date", "2026-11-26", "--status", "failed", "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["email"] == "p1@example.org" and row["last_error"] == "SendGrid 400: bad"
    assert set(row) == {
        "id",
        "digest_date",
        "email",
        "status",
        "papers",
        "attempts",
        "sent_at",
        "provider_message_id",
        "last_error",
    }
    csv = cli("deliveries", "list", "--all", "--format", "csv")
    assert csv.stdout.splitlines()[0] == "id,digest_date,email,status,papers,attempts,last_error"


def test_an_unknown_status_is_one_line_and_exit_2(session: Session, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("deliveries", "list", "--status", "lost")
    assert result.exit_code == 2 and "is not a status" in result.output


def test_stats_counts_each_day(session: Session, cli) -> None:  # type: ignore[no-untyped-def]
    _rows(session)
    result = cli("stats", "--days", "3650", "--format", "json")
    assert json.loads(result.stdout) == [
        {"date": "2026-11-26", "due": 3, "sent": 1, "skipped": 1, "failed": 1, "unfinished": 0}
    ]


def test_reading_the_outbox_never_imports_torch(database_url: str) -> None:
    code = (
        "import sys; from newsletter.cli import app\n"
        "for args in (['stats'], ['deliveries', 'list', '--all']):\n"
        "    try: app(args)\n"
        "    except SystemExit as e: assert e.code == 0, e\n"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
