"""SendGrid's signed Event Webhook: only signed batches count, each event counts once."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from newsletter.db import session_scope
from newsletter.delivery.events import MailEvent, delivery_stats
from newsletter.delivery.models import Delivery, DeliveryStatus
from newsletter.web import create_app
from subscribers import service
from subscribers.models import Status
from tests.support.requirements import shared
from tests.support.web import WebhookSigner, client

URL = "/webhooks/sendgrid"


def _subscribe(engine: Engine, email: str = "example@test.com") -> tuple[int, int]:
    """An active subscriber with one sent delivery: (subscriber id, delivery id)."""
    with session_scope(engine) as session:
        subscriber = service.create(session, service.build_create(email, "robots", confirmed=True))
        delivery = Delivery(
            subscriber_id=subscriber.id or 0, digest_date=date(2026, 11, 27), status=DeliveryStatus.SENT
        )
        session.add(delivery)
        session.flush()
        return subscriber.id or 0, delivery.id or 0


def _event(kind: str, event_id: str, email: str = "example@test.com", **extra: object) -> dict[str, object]:
    return {"email": email, "timestamp": 1764230400, "event": kind, "sg_event_id": event_id, **extra}


def _post(web: TestClient, signer: WebhookSigner, events: object) -> object:
    body = json.dumps(events).encode()
    return web.post(URL, content=body, headers=signer.headers(body))


def _status(engine: Engine, email: str = "example@test.com") -> Status:
    with Session(engine) as session:
        return service.find(session, email).status  # type: ignore[union-attr]


def _event_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(MailEvent)).one()


@pytest.mark.parametrize(
    ("kind", "extra", "status"),
    [
        ("bounce", {"type": "bounce", "reason": "550 no such user"}, Status.BOUNCED),
        ("dropped", {"reason": "Bounced Address"}, Status.BOUNCED),
        ("spamreport", {}, Status.COMPLAINED),
        ("unsubscribe", {}, Status.UNSUBSCRIBED),
        ("group_unsubscribe", {"asm_group_id": 10}, Status.UNSUBSCRIBED),
        ("bounce", {"type": "blocked"}, Status.ACTIVE),
        ("delivered", {}, Status.ACTIVE),
        ("group_resubscribe", {}, Status.ACTIVE),
    ],
)
def test_signed_events_change_the_subscriber_as_sendgrid_reports(
    web: TestClient, signer: WebhookSigner, engine: Engine, kind: str, extra: dict, status: Status
) -> None:
    _subscribe(engine)
    response = _post(web, signer, [_event(kind, "ev-1", **extra)])
    assert response.status_code == 200 and response.json()["recorded"] == 1
    assert _status(engine) == status


def test_address_case_does_not_matter_and_a_complaint_outranks_a_later_unsubscribe(
    web: TestClient, signer: WebhookSigner, engine: Engine
) -> None:
    _subscribe(engine, "Ada@Example.org")
    _post(
        web,
        signer,
        [_event("spamreport", "a", "ada@EXAMPLE.org"), _event("unsubscribe", "b", "ada@example.org")],
    )
    assert _status(engine, "ada@example.org") == Status.COMPLAINED


def test_unsigned_and_tampered_batches_are_refused_and_record_nothing(
    web: TestClient, signer: WebhookSigner, engine: Engine
) -> None:
    _subscribe(engine)
    body = json.dumps([_event("bounce", "ev-1")]).encode()
    headers = signer.headers(body)
    unsigned = web.post(URL, content=body, headers={"content-type": "application/json"})
    tampered = web.post(URL, content=body.replace(b"bounce", b"spamreport"), headers=headers)
    other_time = web.post(
        URL, content=body, headers={**headers, "X-Twilio-Email-Event-Webhook-Timestamp": "1"}
    )
    other_key = web.post(URL, content=body, headers=WebhookSigner().headers(body))
    garbage = web.post(
        URL, content=body, headers={**headers, "X-Twilio-Email-Event-Webhook-Signature": "%%%"}
    )
    for response in (unsigned, tampered, other_time, other_key, garbage):
        assert response.status_code == 403 and response.json()["reason"]
    assert _status(engine) == Status.ACTIVE and _event_count(engine) == 0


def test_webhook_is_closed_when_no_public_key_is_configured(
    database_url: str, monkeypatch: pytest.MonkeyPatch, signer: WebhookSigner
) -> None:
    from newsletter.settings import Settings

    with client(create_app(Settings())) as web:
        response = _post(web, signer, [_event("bounce", "x")])
    assert response.status_code == 403 and "not configured" in response.json()["reason"]


def test_a_bad_public_key_stops_the_app_at_start_with_a_message(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.errors import UserError
    from newsletter.settings import Settings

    monkeypatch.setenv("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY", "bm90IGEga2V5")
    with pytest.raises(UserError, match="not a public key"):
        create_app(Settings())


def test_replayed_sample_batch_is_applied_once(
    web: TestClient, signer: WebhookSigner, engine: Engine
) -> None:
    """SendGrid's documented sample, with distinct event ids, posted twice."""
    _subscribe(engine)
    sample = json.loads(shared("fixtures/sendgrid_events/event_webhook_sample.json").read_text())
    events = [{**event, "sg_event_id": f"sample-{i}"} for i, event in enumerate(sample)]
    first = _post(web, signer, events).json()
    assert first == {"received": 11, "recorded": 11, "duplicates": 0, "ignored": 0, "status_changes": 2}
    assert _status(engine) == Status.COMPLAINED  # bounce, then the spam report outranks it
    again = _post(web, signer, events).json()
    assert again == {"received": 11, "recorded": 0, "duplicates": 11, "ignored": 0, "status_changes": 0}
    assert _event_count(engine) == 11


def test_events_sharing_one_event_id_count_once(
    web: TestClient, signer: WebhookSigner, engine: Engine
) -> None:
    """The sample as published: every event carries the same placeholder sg_event_id."""
    _subscribe(engine)
    body = shared("fixtures/sendgrid_events/event_webhook_sample.json").read_bytes()
    report = web.post(URL, content=body, headers=signer.headers(body)).json()
    assert report["recorded"] == 1 and report["duplicates"] == 10
    assert _status(engine) == Status.ACTIVE  # only the first ("processed") was applied


def test_delivered_open_and_click_count_towards_the_delivery_named_in_custom_args(
    web: TestClient, signer: WebhookSigner, engine: Engine
) -> None:
    _, delivery_id = _subscribe(engine)
    events = [
        _event("delivered", "d1", delivery_id=str(delivery_id)),
        _event("open", "o1", delivery_id=str(delivery_id)),
        _event("open", "o2", delivery_id=str(delivery_id)),
        _event("click", "c1", delivery_id=str(delivery_id), url="https://arxiv.org/abs/1"),
        _event("open", "o3", delivery_id="999999"),  # a delivery we do not know
    ]
    assert _post(web, signer, events).json()["recorded"] == 5
    with Session(engine) as session:
        stats = delivery_stats(session)
    assert stats == {delivery_id: {"delivered": 1, "open": 2, "click": 1}}


def test_signed_but_malformed_batches_are_a_client_error(
    web: TestClient, signer: WebhookSigner, engine: Engine
) -> None:
    _subscribe(engine)
    for body in (b"not json", b'{"event": "bounce"}', b"[" * 5000 + b"]" * 5000):
        response = web.post(URL, content=body, headers=signer.headers(body))
        assert response.status_code == 400
    odd = [
        1,
        "x",
        None,
        {"event": 5},
        {"event": "bounce", "email": ["a"]},
        {"event": "open", "timestamp": 1e300},
    ]
    report = _post(web, signer, odd).json()
    assert report["ignored"] == 4 and report["recorded"] == 2
    assert _status(engine) == Status.ACTIVE


def test_events_holding_nul_characters_are_refused_and_record_nothing(
    web: TestClient, signer: WebhookSigner, engine: Engine
) -> None:
    _subscribe(engine)
    response = _post(web, signer, [_event("bounce", "\x00"), _event("open", "e1", email="a\x00@test.com")])
    assert response.status_code == 400 and "NUL" in response.json()["reason"]
    assert _status(engine) == Status.ACTIVE and _event_count(engine) == 0
