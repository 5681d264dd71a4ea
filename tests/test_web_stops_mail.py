"""The promises that keep us off blocklists: a one-click unsubscribe or a bounce reported by
SendGrid stops the very next `newsletter send` from mailing that person."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.db import session_scope
from newsletter.delivery.models import Delivery
from newsletter.settings import Settings
from newsletter.tokens import Purpose, make_token
from subscribers import service
from tests.support.papers import make_paper
from tests.support.web import WebhookSigner, client, outbox

pytestmark = pytest.mark.slow

PEOPLE = ("stays@example.org", "leaves@example.org")


@pytest.fixture
def two_readers(engine: Engine, web_settings: Settings) -> dict[str, int]:
    """Two active subscribers with the same interests, and papers that match them."""
    from newsletter.ranking.service import embed_missing

    with session_scope(engine) as session:
        ids = {
            email: service.create(
                session,
                service.build_create(email, "graph neural networks, diffusion models", confirmed=True),
            ).id
            or 0
            for email in PEOPLE
        }
        session.add_all(make_paper(index) for index in range(8))
    with session_scope(engine) as session:
        embed_missing(session, web_settings)
    return ids


def _send_and_read(cli: Callable[..., object], engine: Engine, home: Path) -> set[str]:
    result = cli("send")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    with Session(engine) as session:
        delivered = {subscriber_id for subscriber_id in session.exec(select(Delivery.subscriber_id))}
    recipients = {
        message["To"] for message in outbox(home) if "confirm" not in str(message["Subject"]).lower()
    }
    with Session(engine) as session:
        emails = {service.find(session, email).id: email for email in PEOPLE}  # type: ignore[union-attr]
    assert {emails[i] for i in delivered} == recipients
    return recipients


def test_one_click_unsubscribe_without_cookies_means_the_next_send_skips_that_person(
    app, two_readers: dict[str, int], web_settings: Settings, engine: Engine, cli, isolated_env
) -> None:
    token = make_token(web_settings, Purpose.UNSUBSCRIBE, two_readers["leaves@example.org"])
    with client(app) as mail_provider:
        response = mail_provider.post(
            f"/unsubscribe/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200 and "cookie" not in response.request.headers
    assert _send_and_read(cli, engine, isolated_env) == {"stays@example.org"}


def test_a_signed_bounce_event_stops_mail_to_that_address(
    app, two_readers: dict[str, int], signer: WebhookSigner, engine: Engine, cli, isolated_env
) -> None:
    body = json.dumps(
        [
            {
                "email": "Leaves@Example.org",
                "event": "bounce",
                "type": "bounce",
                "sg_event_id": "b-1",
                "reason": "550 5.1.1 user unknown",
                "timestamp": 1764230400,
            }
        ]
    ).encode()
    with client(app) as sendgrid:
        assert (
            sendgrid.post("/webhooks/sendgrid", content=body, headers=signer.headers(body)).status_code == 200
        )
    assert _send_and_read(cli, engine, isolated_env) == {"stays@example.org"}
