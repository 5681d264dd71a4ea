"""The SendGrid transport against a spec-validating SendGrid server on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from datetime import date

import pytest

from newsletter.delivery.message import build_mail, new_message_id
from newsletter.delivery.transports import Outcome, Outgoing, SendResult, TransportStopped, get_transport
from newsletter.digest.context import DigestItem
from newsletter.digest.render import render_digest
from newsletter.settings import Settings
from subscribers.models import Subscriber
from tests.support.papers import make_paper
from tests.support.sendgrid_server import Reply, SendGridServer, delivery_id, rate_limited

DAY = date(2026, 11, 27)


def _batch(settings: Settings, n: int) -> list[Outgoing]:
    out = []
    for i in range(1, n + 1):
        reader = Subscriber(id=i, email=f"r{i}@example.org", email_key=f"r{i}@example.org", interests=["x"])
        rendered = render_digest(
            settings, reader, [DigestItem(make_paper(i, id=i), "x", None)], digest_date=DAY
        )
        mail = build_mail(
            settings,
            to=reader.email,
            subscriber_id=i,
            rendered=rendered,
            message_id=new_message_id(settings, f"digest.{i}"),
        )
        out.append(Outgoing(key=i, mail=mail, digest_date=DAY))
    return out


def _send(n: int) -> dict[int, SendResult]:
    settings = Settings()
    with get_transport(settings) as transport:
        return {r.key: r for r in transport.send(_batch(settings, n))}


def test_every_request_matches_the_mail_send_spec_and_carries_our_headers(sendgrid: SendGridServer) -> None:
    results = _send(3)
    assert all(r.ok and r.provider_id for r in results.values())
    assert sendgrid.invalid == [] and len(sendgrid.accepted) == 3
    body = sendgrid.accepted[0]
    assert body["categories"] == ["digest"]
    assert body["personalizations"][0]["custom_args"] == {"delivery_id": delivery_id(body)}
    assert "custom_args" not in body  # top-level custom_args is a string in the schema
    assert set(body["headers"]) == {"Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"}
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert sendgrid.recipients() == {"r1@example.org": 1, "r2@example.org": 1, "r3@example.org": 1}


def test_the_server_rejects_a_body_that_breaks_the_spec(sendgrid: SendGridServer) -> None:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        sendgrid.url + "/v3/mail/send",
        data=json.dumps({"personalizations": [{"to": [{"email": "a@b.c"}]}], "from": {"email": 5}}).encode(),
        headers={"Authorization": f"Bearer {sendgrid.api_key}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert len(sendgrid.invalid) == 1


def test_sandbox_mode_is_sent_when_configured(
    sendgrid: SendGridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID_SANDBOX", "true")
    assert all(r.ok for r in _send(1).values())
    assert sendgrid.invalid == [] and sendgrid.accepted == []
    assert sendgrid.sandboxed[0]["mail_settings"]["sandbox_mode"] == {"enable": True}


def test_429_pauses_every_worker_until_the_reset_time(sendgrid: SendGridServer) -> None:
    resets: list[float] = []

    def script(body: dict, attempt: int) -> Reply | None:
        if delivery_id(body) == "1" and attempt == 1:
            reply = rate_limited(1.0)
            resets.append(float(reply.headers["X-RateLimit-Reset"]))
            return reply
        return None

    sendgrid.script = script
    results = _send(2)
    assert all(r.ok for r in results.values())
    retry_at = next(t for t, key, attempt in sendgrid.arrivals if key == "1" and attempt == 2)
    assert retry_at >= resets[0] - 0.05
    assert sendgrid.recipients() == {"r1@example.org": 1, "r2@example.org": 1}


def test_5xx_is_retried_with_backoff_and_then_delivered_once(sendgrid: SendGridServer) -> None:
    sendgrid.script = lambda body, attempt: Reply(503) if attempt <= 2 else None
    results = _send(2)
    assert all(r.ok and r.attempts == 3 for r in results.values())
    assert len(sendgrid.accepted) == 2


def test_5xx_past_the_retry_limit_fails_with_the_reason(
    sendgrid: SendGridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID_MAX_RETRIES", "2")
    sendgrid.script = lambda body, attempt: Reply(500, message="internal trouble")
    result = _send(1)[1]
    assert not result.ok and result.attempted and result.attempts == 3
    assert result.error == "SendGrid 500: internal trouble"


def test_400_fails_only_that_message(sendgrid: SendGridServer) -> None:
    sendgrid.script = lambda body, attempt: (
        Reply(400, message="invalid to") if delivery_id(body) == "2" else None
    )
    results = _send(3)
    assert results[1].ok and results[3].ok
    assert not results[2].ok and "400" in (results[2].error or "") and results[2].attempts == 1


def test_a_bad_key_stops_the_run_with_one_clear_line(
    sendgrid: SendGridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID_API_KEY", "SG.wrong")
    monkeypatch.setenv("NEWSLETTER_SENDGRID_CONCURRENCY", "1")
    settings = Settings()
    seen: list[SendResult] = []
    with get_transport(settings) as transport, pytest.raises(TransportStopped) as stopped:
        for result in transport.send(_batch(settings, 5)):
            seen.append(result)
    assert "\n" not in stopped.value.message
    assert "NEWSLETTER_SENDGRID_API_KEY" in stopped.value.message and "401" in stopped.value.message
    assert len(seen) == 5 and not any(r.ok or r.attempted for r in seen)
    assert sendgrid.statuses[401] == 1  # it stopped after the first refusal


def test_a_request_whose_answer_never_comes_is_an_unknown_outcome_and_not_sent_again(
    sendgrid: SendGridServer,
) -> None:
    """After a timeout nobody knows whether SendGrid took the message: sending it again here
    could make a second copy, so the outbox's in-flight policy decides instead."""
    sendgrid.script = lambda body, attempt: Reply(hang=True)
    started = time.monotonic()
    results = _send(1)
    sendgrid.release()
    assert results[1].outcome == Outcome.UNKNOWN and results[1].attempts == 1
    assert "outcome unknown" in (results[1].error or "") and "Timeout" in (results[1].error or "")
    assert time.monotonic() - started < 10


def test_a_server_that_cannot_be_reached_is_retried_then_fails_the_message(
    sendgrid: SendGridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing reached SendGrid, so retrying cannot duplicate; the outcome is certain."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("NEWSLETTER_SENDGRID_HOST", f"http://127.0.0.1:{closed.getsockname()[1]}")
    monkeypatch.setenv("NEWSLETTER_SENDGRID_MAX_RETRIES", "2")
    result = _send(1)[1]
    assert result.outcome == Outcome.FAILED and result.attempts == 3
    assert (result.error or "").startswith("SendGrid unreachable: ConnectError")


def test_connections_are_kept_alive_and_reused(
    sendgrid: SendGridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SENDGRID_CONCURRENCY", "2")
    assert all(r.ok for r in _send(12).values())
    assert len(sendgrid.accepted) == 12 and sendgrid.connections <= 2
