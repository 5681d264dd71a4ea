"""The confirmation email: the only mail a pending address gets, a few times a day at most."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

from sqlmodel import Session

from newsletter.delivery.confirmation import send_confirmation
from newsletter.settings import Settings
from newsletter.tokens import Purpose, read_token
from subscribers.models import Status, Subscriber


def _subscriber(session: Session, status: Status) -> Subscriber:
    person = Subscriber(
        email="new@example.org", email_key="new@example.org", interests=["graphs"], status=status
    )
    session.add(person)
    session.commit()
    return person


def test_a_pending_address_gets_a_signed_confirmation_link(
    session: Session, settings: Settings, isolated_env: Path
) -> None:
    person = _subscriber(session, Status.PENDING)
    assert send_confirmation(session, settings, person) is True
    session.commit()
    (path,) = (isolated_env / "outbox").rglob("*.eml")
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert msg["To"] == "new@example.org" and "Confirm" in msg["Subject"]
    assert msg.get_content_type() == "multipart/alternative"
    token = re.search(r"/confirm/([A-Za-z0-9_.\-]+)", msg.get_body(("plain",)).get_content()).group(1)
    assert read_token(settings, Purpose.CONFIRM, token).subscriber_id == person.id


def test_confirmations_are_capped_per_address_per_day(
    session: Session, settings: Settings, isolated_env: Path
) -> None:
    person = _subscriber(session, Status.PENDING)
    sent = [send_confirmation(session, settings, person) for _ in range(settings.confirmations_per_day + 2)]
    session.commit()
    assert sent == [True] * settings.confirmations_per_day + [False, False]
    assert len(list((isolated_env / "outbox").rglob("*.eml"))) == settings.confirmations_per_day


def test_active_or_unsubscribed_addresses_get_no_confirmation(
    session: Session, settings: Settings, isolated_env: Path
) -> None:
    person = _subscriber(session, Status.UNSUBSCRIBED)
    assert send_confirmation(session, settings, person) is False
    assert not (isolated_env / "outbox").exists()
