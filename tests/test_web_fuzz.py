"""Fuzzing the public endpoints: whatever arrives, the answer is never a 500."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.db import session_scope
from newsletter.settings import Settings
from newsletter.web import create_app
from tests.support.papers import make_paper
from tests.support.web import WebhookSigner, client, csrf_token

FIELDS = ("email", "interests", "timezone", "frequency", "max_papers", "action", "csrf_token")
text = st.text(max_size=300) | st.sampled_from(
    [
        "",
        "ada@example.org",
        "Europe/Berlin",
        "weekly",
        "preview",
        "0",
        "-1",
        "9" * 30,
        "\x00",
        "ü@ü.de",
        "author:",
        "-",
    ]
)
forms = st.fixed_dictionaries(
    {},
    optional={name: text for name in FIELDS} | {"action": st.sampled_from(["subscribe", "preview"]) | text},
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
events = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(
            ["bounce", "dropped", "spamreport", "unsubscribe", "open", "click", "delivered"]
        )
        | json_values,
        "email": st.sampled_from(["ada@example.org", "ADA@example.org"]) | json_values,
        "sg_event_id": st.text(max_size=120) | json_values,
        "delivery_id": st.sampled_from(["1", "99999999999999999999", "-5"]) | json_values,
        "custom_args": json_values,
        "timestamp": st.integers() | st.floats(allow_nan=False, allow_infinity=False) | json_values,
        "type": st.sampled_from(["bounce", "blocked"]) | json_values,
    },
)


@pytest.fixture
def app(database_url: str, monkeypatch: pytest.MonkeyPatch, signer: WebhookSigner) -> FastAPI:
    """The app with rate limits out of the way, so every example reaches the validation."""
    monkeypatch.setenv("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    for name in ("SIGNUP_LIMIT_PER_IP", "SIGNUP_LIMIT_PER_ADDRESS", "PREVIEW_LIMIT_PER_IP"):
        monkeypatch.setenv(f"NEWSLETTER_{name}", "100000/hour")
    return create_app(Settings())


@pytest.fixture
def papers(app: FastAPI) -> None:
    """A few embedded papers, so previews run the real ranking."""
    from newsletter.ranking.service import embed_missing

    engine = app.state.web.engine
    with session_scope(engine) as session:
        session.add_all(make_paper(index) for index in range(4))
    with session_scope(engine) as session:
        embed_missing(session, app.state.web.settings)


@pytest.mark.slow
@FUZZ
@given(form=forms, keep_token=st.booleans())
def test_sign_up_form_never_fails_with_a_server_error(
    app: FastAPI, papers: None, form: dict[str, str], keep_token: bool
) -> None:
    with client(app) as web:
        if keep_token:
            form = {**form, "csrf_token": csrf_token(web)}
        response = web.post("/subscribe", data=form)
    assert response.status_code in (200, 400, 403, 429)


@FUZZ
@given(
    body=st.binary(max_size=400),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
            "multipart/form-data",
        ]
    ),
)
def test_sign_up_with_raw_bodies_never_fails_with_a_server_error(
    app: FastAPI, body: bytes, content_type: str
) -> None:
    with client(app) as web:
        web.post("/subscribe", content=body, headers={"content-type": content_type})


@FUZZ
@given(batch=st.lists(events, max_size=6) | json_values)
def test_signed_webhook_batches_never_fail_with_a_server_error(
    app: FastAPI, signer: WebhookSigner, batch: object
) -> None:
    body = json.dumps(batch).encode()
    with client(app) as web:
        response = web.post("/webhooks/sendgrid", content=body, headers=signer.headers(body))
    assert response.status_code in (200, 400)


@FUZZ
@given(body=st.binary(max_size=400), signature=st.text(max_size=120), stamp=st.text(max_size=20))
def test_unsigned_or_forged_webhook_requests_are_refused_without_a_server_error(
    app: FastAPI, body: bytes, signature: str, stamp: str
) -> None:
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }
    with client(app) as web:
        response = web.post(
            "/webhooks/sendgrid", content=body, headers={k: v for k, v in headers.items() if v.isascii()}
        )
    assert response.status_code == 403
