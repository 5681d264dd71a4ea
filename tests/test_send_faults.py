"""The send path under faults: each message's trouble stays that message's, a live run's
messages are never taken over, a reader who stops mail gets none, two senders send once.

Digests are recorded straight into the outbox (no ranking), then sent by the real outbox
through the real transports to real servers on 127.0.0.1, on SQLite and PostgreSQL. Where a
test needs two things to happen in a fixed order, it waits on the database driver's
statement events (SQLAlchemy's `before_cursor_execute`), never on sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from jobs.digest import dispatch
from jobs.send import send_digests
from newsletter.db import session_scope
from newsletter.delivery import outbox
from newsletter.delivery.models import DeliveryStatus
from newsletter.delivery.outbox import SendReport
from newsletter.delivery.transports import get_transport
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.models import Subscriber
from tests.support.outbox import is_claim, is_load, on_statement, record_digests, rows
from tests.support.sendgrid_server import Reply, SendGridServer, delivery_id, rate_limited

NOW = datetime.now(UTC)
DAY = NOW.date()


def _cut_short(sendgrid: SendGridServer, keys: set[int], cut: int) -> None:
    sendgrid.script = lambda body, attempt: (
        Reply(cut=cut) if attempt == 1 and int(delivery_id(body) or 0) in keys else None
    )


# --- issue 11, item 3: one message's failure stays that message's ---------------------------


def test_an_answer_cut_short_after_its_status_line_is_still_a_sent_message(
    sendgrid: SendGridServer, engine: Engine
) -> None:
    ids = record_digests(engine, 8, NOW)
    cut = {ids["reader2@example.org"], ids["reader5@example.org"]}
    _cut_short(sendgrid, cut, -4)  # "202 Accepted" and headers arrive; the body is cut

    report = send_digests(engine, Settings(), digest_date=DAY)

    assert report.sent == 8 and report.failed == 0
    assert sendgrid.recipients() == {address: 1 for address in ids}
    assert {r.status for r in rows(engine).values()} == {DeliveryStatus.SENT}


@pytest.mark.parametrize(
    ("policy", "copies", "status"),
    [("resend", 2, DeliveryStatus.SENT), ("mark-failed", 1, DeliveryStatus.FAILED)],
)
def test_an_answer_cut_before_its_status_is_an_unknown_outcome_handled_for_that_message_only(
    sendgrid: SendGridServer,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
    copies: int,
    status: DeliveryStatus,
) -> None:
    monkeypatch.setenv("NEWSLETTER_IN_FLIGHT_POLICY", policy)
    ids = record_digests(engine, 8, NOW)
    lost = ids["reader3@example.org"]
    _cut_short(sendgrid, {lost}, 5)  # accepted, then the connection dies inside "HTTP/1.1 202"

    report = send_digests(engine, Settings(), digest_date=DAY)

    assert report.stopped is None and report.uncertain == 1
    got = sendgrid.recipients()
    assert got.pop("reader3@example.org") == copies  # the provider took it; nobody could know
    assert got == {address: 1 for address in ids if address != "reader3@example.org"}
    final = rows(engine)
    assert final.pop(lost).status == status
    assert {r.status for r in final.values()} == {DeliveryStatus.SENT}


def test_an_answer_too_late_for_the_timeout_is_not_sent_again_under_mark_failed(
    sendgrid: SendGridServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_IN_FLIGHT_POLICY", "mark-failed")
    ids = record_digests(engine, 3, NOW)
    slow = ids["reader1@example.org"]
    sendgrid.script = lambda body, attempt: (
        Reply(late=1.5) if int(delivery_id(body) or 0) == slow and attempt == 1 else None
    )  # accepted at once, answered after the 1 s timeout

    report = send_digests(engine, Settings(), digest_date=DAY)

    assert sendgrid.recipients() == {address: 1 for address in ids}
    row = rows(engine)[slow]
    assert row.status == DeliveryStatus.FAILED and "unknown" in (row.last_error or "")
    assert report.sent == 2 and report.uncertain == 1


# --- issue 11, item 4: a live run's messages are never taken over ----------------------------


def test_a_message_waiting_out_a_long_rate_limit_is_not_taken_over_by_retry_send_or_dispatch(
    sendgrid: SendGridServer, engine: Engine, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    monkeypatch.setenv("NEWSLETTER_IN_FLIGHT_GRACE_SECONDS", "1")
    ids = record_digests(engine, 2, NOW)
    waiting = ids["reader0@example.org"]
    sendgrid.script = lambda body, attempt: (
        rate_limited(4.0) if int(delivery_id(body) or 0) == waiting and attempt == 1 else None
    )
    reports: list[SendReport] = []
    first = threading.Thread(target=lambda: reports.append(send_digests(engine, Settings(), digest_date=DAY)))
    first.start()
    try:
        deadline = time.monotonic() + 30
        while sendgrid.statuses[429] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.5)  # the row is now older than the grace period, and still in flight

        assert cli("deliveries", "retry").exit_code == 0
        assert cli("send", "--date", DAY.isoformat()).exit_code == 0
        dispatch(Settings())
        assert rows(engine)[waiting].status == DeliveryStatus.SENDING
    finally:
        first.join(timeout=60)
    assert reports and reports[0].sent == 2
    assert sendgrid.recipients() == {address: 1 for address in ids}


# --- issue 11, item 5: the claim re-checks the reader ----------------------------------------


def test_a_reader_who_unsubscribes_or_pauses_after_rendering_gets_nothing(
    engine: Engine, settings: Settings
) -> None:
    ids = record_digests(engine, 3, NOW)
    changed = threading.Event()

    def stop_mail(statement: str, parameters: Any) -> None:
        if changed.is_set() or not is_claim(statement, parameters):
            return
        changed.set()  # the digests are rendered; now two readers change their minds
        with session_scope(engine) as session:
            lifecycle.unsubscribe(session, _reader(session, "reader0@example.org"))
            lifecycle.set_paused(session, _reader(session, "reader1@example.org"), True)

    with on_statement(engine, stop_mail):
        report = send_digests(engine, settings, digest_date=DAY)

    assert changed.is_set() and report.sent == 1
    files = list((settings.home / "outbox" / DAY.isoformat()).glob("*.eml"))
    assert len(files) == 1 and "reader2@example.org" in files[0].read_text()
    final = rows(engine)
    assert "unsubscribed" in (final[ids["reader0@example.org"]].last_error or "")
    assert "paused" in (final[ids["reader1@example.org"]].last_error or "")
    assert final[ids["reader0@example.org"]].status == DeliveryStatus.FAILED


def _reader(session: Session, address: str) -> Subscriber:
    return session.exec(select(Subscriber).where(Subscriber.email == address)).one()


# --- issue 11, item 20: two senders, one row, one send -----------------------------------------


def test_two_senders_racing_for_the_same_rows_send_each_message_once(
    sendgrid: SendGridServer, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both senders read the row as pending; the first claims it and its request is held at
    the provider; only then does the second try to claim it."""
    monkeypatch.setenv("NEWSLETTER_SENDGRID_TIMEOUT", "60")  # the held request must not time out
    ids = record_digests(engine, 1, NOW)
    held = threading.Event()
    sendgrid.script = lambda body, attempt: Reply(wait=held) if attempt == 1 else None
    lock = threading.Lock()
    readers: set[int] = set()  # the threads (senders) that have read the pending rows
    claims = [0]
    second_claim_tried = threading.Event()

    def order(statement: str, parameters: Any) -> None:
        if is_load(statement):
            with lock:
                readers.add(threading.get_ident())
        elif is_claim(statement, parameters):
            _wait(lambda: len(readers) >= 2, "both senders to read the pending row")
            with lock:
                claims[0] += 1
                mine = claims[0]
            if mine == 2:  # the second sender claims only once the first one's request is held
                _wait(lambda: sendgrid.hanging >= 1, "the first request to reach the provider")
                threading.Timer(0.5, second_claim_tried.set).start()

    settings = Settings()
    reports = [SendReport(digest_date=DAY, transport="sendgrid") for _ in range(2)]

    def sender(report: SendReport) -> None:
        with get_transport(settings) as transport:
            outbox.send_pending(engine, settings, transport, DAY, None, None, [], report)

    with on_statement(engine, order):
        threads = [threading.Thread(target=sender, args=(r,)) for r in reports]
        for thread in threads:
            thread.start()
        _wait(second_claim_tried.is_set, "the second claim")
        held.set()
        for thread in threads:
            thread.join(timeout=60)

    assert claims[0] == 2
    assert sorted(r.sent for r in reports) == [0, 1]
    assert sendgrid.recipients() == {"reader0@example.org": 1}
    assert rows(engine)[ids["reader0@example.org"]].status == DeliveryStatus.SENT


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
