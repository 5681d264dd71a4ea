"""The delivery outbox: each due subscriber gets one digest per date, whatever happens.

These run the real pipeline (ranking with the embedding model, MJML rendering, a transport)
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import email
import json
import signal
from datetime import UTC, date, datetime, timedelta
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from jobs.due import due_on
from jobs.send import send_digests
from newsletter.delivery.models import Delivery, DeliveryItem, DeliveryStatus
from newsletter.digest.render import GMAIL_CLIP_BYTES
from newsletter.settings import Settings
from subscribers.models import Status, Subscriber
from tests.support.outbox import send_process, wait_for
from tests.support.papers import TOPICS, make_paper
from tests.support.sendgrid_server import Reply, SendGridServer, delivery_id, rate_limited

pytestmark = pytest.mark.slow

DAY = datetime.now(UTC).date()

READERS = {
    "ada@example.org": ["graph neural networks for molecules"],
    "grace@example.org": ["diffusion models for image synthesis"],
    "alan@example.org": ["speech recognition for low-resource languages"],
}


def _seed(
    session: Session, readers: dict[str, list[str]] = READERS, *, papers: int = 24, **fields: object
) -> dict[str, int]:
    for i in range(papers):
        session.add(make_paper(i, upvotes=(i * 7) % 50))
    ids = {}
    for address, interests in readers.items():
        subscriber = Subscriber(
            email=address,
            email_key=address,
            interests=interests,
            status=Status.ACTIVE,
            max_papers=3,
            **fields,  # type: ignore[arg-type]
        )
        session.add(subscriber)
        session.flush()
        ids[address] = subscriber.id
    session.commit()
    return ids  # type: ignore[return-value]


def _rows(engine: Engine, day: date = DAY) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.exec(select(Delivery).where(Delivery.digest_date == day).order_by(Delivery.id)))


def _eml_files(home: Path, day: date = DAY) -> list[Path]:
    return sorted((home / "outbox" / day.isoformat()).glob("*.eml"))


def test_three_readers_get_one_personal_digest_each_and_a_rerun_sends_nothing(
    session: Session, engine: Engine, settings: Settings, isolated_env: Path, cli
) -> None:
    _seed(session)
    result = cli("send")
    assert result.exit_code == 0, result.output
    files = _eml_files(isolated_env)
    assert len(files) == 3
    picked: dict[str, set[str]] = {}
    for path in files:
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["List-Unsubscribe"].startswith(f"<{settings.base_url}/unsubscribe/")
        assert ", <mailto:" in msg["List-Unsubscribe"]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["List-Id"] and msg["Message-ID"]
        html = msg.get_body(("html",)).get_content()
        assert len(html.encode()) < GMAIL_CLIP_BYTES
        picked[str(msg["To"])] = {t for t, _ in TOPICS if t in html.split("Trending today")[0]}
    assert set(picked) == set(READERS)
    assert picked["ada@example.org"] != picked["grace@example.org"] != picked["alan@example.org"]
    assert any("Graph neural networks" in t for t in picked["ada@example.org"])
    assert any("Diffusion models" in t for t in picked["grace@example.org"])
    assert {r.status for r in _rows(engine)} == {DeliveryStatus.SENT}

    again = cli("send")
    assert again.exit_code == 0
    assert len(_eml_files(isolated_env)) == 3
    assert "0 sent" in again.output and "3 already done" in again.output


def test_recorded_papers_are_never_sent_again_on_a_later_day(
    session: Session, engine: Engine, settings: Settings
) -> None:
    ids = _seed(session, {"ada@example.org": READERS["ada@example.org"]})
    send_digests(engine, settings, digest_date=DAY)
    send_digests(engine, settings, digest_date=DAY + timedelta(days=1))
    with Session(engine) as s:
        items = list(
            s.exec(
                select(DeliveryItem.paper_id)
                .join(Delivery)
                .where(Delivery.subscriber_id == ids["ada@example.org"])
            )
        )
    assert items and len(items) == len(set(items))


def test_dry_run_renders_and_reports_but_records_and_sends_nothing(
    session: Session, engine: Engine, isolated_env: Path, cli
) -> None:
    _seed(session)
    result = cli("send", "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] is True and report["rendered"] == 3 and report["sent"] == 0
    assert {p["email"] for p in report["previews"]} == set(READERS)
    assert _rows(engine) == [] and _eml_files(isolated_env) == []


def test_unsubscribed_bounced_complained_paused_and_pending_addresses_get_no_digest(
    session: Session, engine: Engine, settings: Settings, isolated_env: Path
) -> None:
    ids = _seed(session)
    for address, status in zip(READERS, [Status.UNSUBSCRIBED, Status.BOUNCED, Status.PENDING], strict=True):
        row = session.get(Subscriber, ids[address])
        row.status = status
        session.add(row)
    session.commit()
    report = send_digests(engine, settings, digest_date=DAY)
    assert report.due == 0 and _eml_files(isolated_env) == []
    explicit = send_digests(engine, settings, digest_date=DAY, subscriber_ids=list(ids.values()))
    assert explicit.not_active == 3 and explicit.sent == 0 and _rows(engine) == []


def test_a_row_recorded_before_an_unsubscribe_is_not_sent(
    session: Session, engine: Engine, settings: Settings, isolated_env: Path
) -> None:
    ids = _seed(session, {"ada@example.org": READERS["ada@example.org"]})
    session.add(Delivery(subscriber_id=ids["ada@example.org"], digest_date=DAY))
    row = session.get(Subscriber, ids["ada@example.org"])
    row.status = Status.COMPLAINED
    session.add(row)
    session.commit()
    send_digests(engine, settings, digest_date=DAY)
    assert _eml_files(isolated_env) == []
    (delivery,) = _rows(engine)
    assert delivery.status == DeliveryStatus.FAILED and "complained" in (delivery.last_error or "")


def test_weekly_readers_are_due_only_on_their_weekday(session: Session) -> None:
    _seed(session, {"ada@example.org": ["graphs"]}, frequency="weekly", weekday=4)
    friday, saturday = date(2026, 11, 27), date(2026, 11, 28)
    assert [s.email for s in due_on(session, friday)] == ["ada@example.org"]
    assert due_on(session, saturday) == []


def test_nothing_new_is_recorded_as_skipped_and_not_sent(
    session: Session, engine: Engine, settings: Settings, isolated_env: Path
) -> None:
    _seed(session, {"ada@example.org": ["graph neural networks for molecules"]}, papers=0)
    report = send_digests(engine, settings, digest_date=DAY)
    assert report.skipped == 1 and report.sent == 0
    assert [r.status for r in _rows(engine)] == [DeliveryStatus.SKIPPED]
    assert _eml_files(isolated_env) == []


def test_limit_caps_the_digests_of_one_run(session: Session, engine: Engine, settings: Settings) -> None:
    _seed(session)
    first = send_digests(engine, settings, digest_date=DAY, limit=2)
    assert first.sent == 2
    rest = send_digests(engine, settings, digest_date=DAY)
    assert rest.sent == 1 and rest.already_done == 2


def _in_flight_row(session: Session, subscriber_id: int) -> Delivery:
    row = Delivery(
        subscriber_id=subscriber_id,
        digest_date=DAY,
        status=DeliveryStatus.SENDING,
        attempts=1,
        message_id="<crashed.1@localhost>",
        updated_at=datetime.now(UTC) - timedelta(hours=1),
    )
    session.add(row)
    session.commit()
    return row


@pytest.mark.parametrize(
    ("policy", "final", "files"),
    [
        ("resend", DeliveryStatus.SENT, 1),
        ("mark-failed", DeliveryStatus.FAILED, 0),
        ("hold", DeliveryStatus.SENDING, 0),
    ],
)
def test_a_digest_in_flight_at_a_crash_follows_the_configured_policy(
    session: Session,
    engine: Engine,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
    final: DeliveryStatus,
    files: int,
) -> None:
    ids = _seed(session, {"ada@example.org": ["graphs"]})
    _in_flight_row(session, ids["ada@example.org"])
    monkeypatch.setenv("NEWSLETTER_IN_FLIGHT_POLICY", policy)
    report = send_digests(engine, Settings(), digest_date=DAY)
    assert report.in_flight == 1 and report.in_flight_policy == policy
    assert f"1 found in flight from a stopped run (policy {policy})" in report.summary()
    (row,) = _rows(engine)
    assert row.status == final and len(_eml_files(isolated_env)) == files
    assert policy in (row.last_error or "") or final == DeliveryStatus.SENT


def test_a_row_claimed_by_a_live_run_is_left_alone_however_long_it_waits(
    session: Session, engine: Engine, settings: Settings
) -> None:
    ids = _seed(session, {"ada@example.org": ["graphs"]})
    row = _in_flight_row(session, ids["ada@example.org"])  # in flight for an hour…
    row.claimed_by = "elsewhere:1:live"
    row.claim_expires_at = datetime.now(UTC) + timedelta(minutes=1)  # …and its run is alive
    session.add(row)
    session.commit()
    report = send_digests(engine, settings, digest_date=DAY)
    assert report.in_flight == 0 and report.in_flight_young == 1
    assert _rows(engine)[0].status == DeliveryStatus.SENDING


def test_deliveries_retry_sends_held_and_failed_digests(
    session: Session, engine: Engine, isolated_env: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _seed(session, {"ada@example.org": ["graphs"], "grace@example.org": ["diffusion"]})
    _in_flight_row(session, ids["ada@example.org"])
    session.add(
        Delivery(
            subscriber_id=ids["grace@example.org"],
            digest_date=DAY,
            status=DeliveryStatus.FAILED,
            last_error="SendGrid 500",
        )
    )
    session.commit()
    monkeypatch.setenv("NEWSLETTER_IN_FLIGHT_POLICY", "hold")
    listing = cli("deliveries", "list", "--format", "json")
    assert {r["status"] for r in json.loads(listing.stdout)} == {"sending", "failed"}
    result = cli("deliveries", "retry")
    assert result.exit_code == 0, result.output
    assert "2 sent" in result.output
    assert {r.status for r in _rows(engine)} == {DeliveryStatus.SENT}
    assert len(_eml_files(isolated_env)) == 2
    stats = json.loads(cli("stats", "--format", "json").stdout)
    assert stats[0] == {
        "date": DAY.isoformat(),
        "due": 2,
        "sent": 2,
        "skipped": 0,
        "failed": 0,
        "unfinished": 0,
    }


def test_a_bad_date_is_one_line_and_exit_2(cli) -> None:
    result = cli("send", "--date", "27/11/2026")
    assert result.exit_code == 2
    assert "use YYYY-MM-DD" in result.output


def test_sending_to_an_unsubscribed_address_by_name_is_refused(session: Session, cli) -> None:
    ids = _seed(session, {"ada@example.org": ["graphs"]})
    row = session.get(Subscriber, ids["ada@example.org"])
    row.status = Status.UNSUBSCRIBED
    session.add(row)
    session.commit()
    result = cli("send", "--subscriber", "ada@example.org")
    assert result.exit_code == 2 and "is unsubscribed" in result.output


# --- SendGrid -----------------------------------------------------------------------


def test_a_third_of_requests_first_failing_with_429_or_500_still_delivers_each_once(
    sendgrid: SendGridServer, session: Session, engine: Engine
) -> None:
    readers = {f"reader{i}@example.org": [TOPICS[i % len(TOPICS)][1]] for i in range(12)}
    _seed(session, readers)

    def script(body: dict, attempt: int) -> Reply | None:
        key = int(delivery_id(body) or 0)
        if attempt == 1 and key % 3 == 0:
            return rate_limited(1.0) if key % 2 else Reply(500)
        return None

    sendgrid.script = script
    report = send_digests(engine, Settings(), digest_date=DAY)
    assert report.sent == 12 and report.failed == 0
    assert sendgrid.invalid == []
    assert sendgrid.statuses[429] >= 1 and sendgrid.statuses[500] >= 1
    assert sendgrid.recipients() == {address: 1 for address in readers}
    assert all(r.status == DeliveryStatus.SENT and r.provider_message_id for r in _rows(engine))


def test_a_refused_api_key_stops_the_run_and_leaves_digests_pending(
    sendgrid: SendGridServer, session: Session, cli, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    _seed(session)
    monkeypatch.setenv("NEWSLETTER_SENDGRID_API_KEY", "SG.revoked")
    result = cli("send")
    assert result.exit_code == 2
    assert result.output.count("Error:") == 1 and "NEWSLETTER_SENDGRID_API_KEY" in result.output
    assert {r.status for r in _rows(engine)} == {DeliveryStatus.PENDING}
    monkeypatch.setenv("NEWSLETTER_SENDGRID_API_KEY", sendgrid.api_key)
    assert cli("send").exit_code == 0
    assert sendgrid.recipients() == {address: 1 for address in READERS}


def test_kill_9_mid_batch_then_rerun_gives_every_reader_exactly_one_digest(
    sendgrid: SendGridServer, session: Session, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Enough readers that the kill leaves some digests not yet claimed: claims are taken a
    # group at a time, a little ahead of the requests.
    readers = {f"reader{i}@example.org": [TOPICS[i % len(TOPICS)][1]] for i in range(24)}
    _seed(session, readers)
    answered = 4
    sendgrid.script = lambda body, attempt: Reply(hang=True) if len(sendgrid.accepted) >= answered else None
    monkeypatch.setenv("NEWSLETTER_SENDGRID_CONCURRENCY", "2")
    monkeypatch.setenv("NEWSLETTER_SENDGRID_TIMEOUT", "60")
    monkeypatch.setenv("NEWSLETTER_IN_FLIGHT_GRACE_SECONDS", "1")

    first = send_process(DAY)
    try:
        wait_for(
            lambda: (
                sendgrid.hanging >= 1
                and sum(r.status == DeliveryStatus.SENT for r in _rows(engine)) == answered
            ),
            180,
            "the first run to be mid-batch",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    statuses = [r.status for r in _rows(engine)]
    assert statuses.count(DeliveryStatus.SENDING) >= 1  # requests in flight at the kill
    assert statuses.count(DeliveryStatus.PENDING) >= 1  # digests recorded, not yet sent

    sendgrid.script = None
    sendgrid.release()
    wait_for(
        lambda: all(r.claim_expires_at < datetime.now(UTC) for r in _rows(engine) if r.claim_expires_at),
        30,
        "the killed run's claims to expire",
    )
    second = send_process(DAY)
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output
    assert "found in flight from a stopped run (policy resend)" in output
    assert sendgrid.recipients() == {address: 1 for address in readers}
    assert sendgrid.invalid == []
    assert {r.status for r in _rows(engine)} == {DeliveryStatus.SENT}


# --- preview ------------------------------------------------------------------------


def test_preview_writes_the_subscribers_digest_without_recording_anything(
    session: Session, engine: Engine, cli, tmp_path: Path
) -> None:
    _seed(session)
    out = tmp_path / "ada.html"
    result = cli("digest", "preview", "--subscriber", "ada@example.org", "--out", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "Graph neural networks" in html and "Unsubscribe" in html
    assert _rows(engine) == []
    text = cli("digest", "preview", "--subscriber", "ada@example.org", "--text")
    assert text.exit_code == 0 and "More like this: " in text.stdout and "<html" not in text.stdout


def test_preview_for_made_up_interests(session: Session, cli) -> None:
    _seed(session)
    result = cli("digest", "preview", "--interests", "diffusion models for image synthesis", "--text")
    assert result.exit_code == 0, result.output
    assert "Diffusion models for high-resolution image synthesis" in result.stdout


def test_preview_needs_exactly_one_of_subscriber_or_interests(cli) -> None:
    result = cli("digest", "preview")
    assert result.exit_code == 2 and "exactly one of --subscriber" in result.output
