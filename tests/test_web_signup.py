"""Sign-up and double opt-in through the web app: /subscribe and /confirm/<token>."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from newsletter.db import session_scope
from newsletter.settings import Settings
from newsletter.tokens import Purpose, make_token
from newsletter.web import create_app
from subscribers import lifecycle, service
from subscribers.models import Status, Subscriber
from tests.support.web import alert, client, csrf_token, field_errors, links, outbox

FORM = {"email": "ada@example.org", "interests": "graph neural networks\nLoRA", "timezone": "Europe/Berlin"}


def _sign_up(web: TestClient, **fields: str):  # type: ignore[no-untyped-def]
    data = {**FORM, **fields}
    return web.post("/subscribe", data={"csrf_token": csrf_token(web), **data})


def _subscriber(engine: Engine, email: str = "ada@example.org") -> Subscriber | None:
    with Session(engine) as session:
        return service.find(session, email)


def _add(engine: Engine, email: str, status: Status = Status.ACTIVE) -> int:
    with session_scope(engine) as session:
        subscriber = service.create(
            session, service.build_create(email, "quantum computing", confirmed=status == Status.ACTIVE)
        )
        if status not in (Status.ACTIVE, Status.PENDING):
            lifecycle.apply_verdict(session, subscriber, status)
        return subscriber.id or 0


def test_sign_up_makes_a_pending_subscriber_and_mails_only_a_confirmation_link(
    web: TestClient, engine: Engine, isolated_env
) -> None:
    response = _sign_up(web, frequency="weekly", max_papers="5")
    assert response.status_code == 200 and response.url.path == "/subscribe/sent"
    assert "Check your inbox" in response.text
    subscriber = _subscriber(engine)
    assert subscriber is not None and subscriber.status == Status.PENDING
    assert subscriber.interests == ["graph neural networks", "LoRA"]
    assert (subscriber.timezone, subscriber.frequency, subscriber.max_papers) == (
        "Europe/Berlin",
        "weekly",
        5,
    )
    [message] = outbox(isolated_env)
    assert message["To"] == "ada@example.org"
    assert len(links(message, "confirm")) == 1


def test_sign_up_answer_is_the_same_whether_or_not_the_address_subscribes(
    app, engine: Engine, isolated_env
) -> None:
    _add(engine, "known@example.org")
    with client(app) as first, client(app) as second:
        new = _sign_up(first, email="new@example.org")
        known = _sign_up(second, email="known@example.org", interests="cooking")
    assert (new.status_code, new.url.path, new.text) == (known.status_code, known.url.path, known.text)
    active = _subscriber(engine, "known@example.org")
    assert active is not None and active.interests == ["quantum computing"]  # a stranger cannot change them
    assert [m["To"] for m in outbox(isolated_env)] == ["new@example.org"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not-an-address"}, "invalid email address"),
        ({"email": ""}, "no email address given"),
        ({"interests": "  ,, ; "}, "no interests given"),
        ({"interests": "x" * 5001}, "keep them under 5000"),
        ({"interests": "y" * 150}, "keep each phrase under"),
        ({"interests": ",".join(f"topic {i}" for i in range(21))}, "at most 20 phrases"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown timezone"),
        ({"timezone": "Europe/" + "x" * 80}, "timezone is longer than 64"),
        ({"frequency": "hourly"}, "unknown frequency"),
        ({"max_papers": "0"}, "outside 1–50"),
        ({"max_papers": "ten"}, "must be a whole number"),
        ({"interests": "robots\x00"}, "control characters"),
    ],
)
def test_sign_up_rejects_bad_input_and_shows_the_form_again_with_the_input_kept(
    web: TestClient, engine: Engine, isolated_env, fields: dict[str, str], message: str
) -> None:
    response = _sign_up(web, **{"email": "keep.me@example.org", **fields})
    assert response.status_code == 400
    assert message.lower() in alert(response.text).lower()
    field = next(iter(fields))
    assert message.lower() in field_errors(response.text)[field].lower()  # beside its field too
    if "email" not in fields:
        assert 'value="keep.me@example.org"' in response.text
    assert _subscriber(engine, "keep.me@example.org") is None and not outbox(isolated_env)


def test_sign_up_without_or_with_a_wrong_csrf_token_is_refused(app, engine: Engine) -> None:
    with client(app) as browser, client(app) as attacker:
        missing = browser.post("/subscribe", data=FORM)
        forged = browser.post("/subscribe", data={**FORM, "csrf_token": "forged"})
        # A valid token from another browser does not match this browser's cookie.
        stolen = browser.post("/subscribe", data={**FORM, "csrf_token": csrf_token(attacker)})
        no_cookie = TestClient(app).post("/subscribe", data={**FORM, "csrf_token": csrf_token(browser)})
    for response in (missing, forged, stolen, no_cookie):
        assert response.status_code == 403 and "submit it again" in alert(response.text)
        assert 'value="ada@example.org"' in response.text  # input kept
    assert _subscriber(engine) is None


def test_sign_ups_are_rate_limited_per_client_and_per_address(
    web_settings: Settings, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    monkeypatch.setenv("NEWSLETTER_SIGNUP_LIMIT_PER_IP", "4/hour")
    monkeypatch.setenv("NEWSLETTER_SIGNUP_LIMIT_PER_ADDRESS", "2/hour")
    with client(create_app(Settings())) as web:
        statuses = [_sign_up(web, email="same@example.org").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert _sign_up(web, email="other@example.org").status_code == 200
        blocked = _sign_up(web, email="third@example.org")
    assert blocked.status_code == 429 and "Too many sign-ups" in alert(blocked.text)
    assert _subscriber(engine, "third@example.org") is None


def test_opening_the_confirm_link_changes_nothing_until_the_page_posts(
    web: TestClient, engine: Engine, isolated_env
) -> None:
    _sign_up(web)
    [message] = outbox(isolated_env)
    path = "/" + links(message, "confirm")[0].split("/", 3)[3]
    page = web.get(path)
    assert page.status_code == 200 and 'id="auto-submit"' in page.text and "<script nonce=" in page.text
    assert _subscriber(engine).status == Status.PENDING  # type: ignore[union-attr]
    token = csrf_token(web, path)
    done = web.post(path, data={"csrf_token": token})
    assert done.status_code == 200 and "You're subscribed" in done.text
    subscriber = _subscriber(engine)
    assert subscriber is not None and subscriber.status == Status.ACTIVE and subscriber.confirmed_at
    again = web.get(path)
    assert again.status_code == 200 and "<title>Already confirmed · Paper Digest</title>" in again.text


def test_confirm_post_without_csrf_token_asks_for_the_button_again(
    app, engine: Engine, settings: Settings
) -> None:
    subscriber_id = _add(engine, "pending@example.org", Status.PENDING)
    with client(app) as web:
        response = web.post(f"/confirm/{make_token(settings, Purpose.CONFIRM, subscriber_id)}")
    assert response.status_code == 403 and "press the button once more" in response.text
    assert _subscriber(engine, "pending@example.org").status == Status.PENDING  # type: ignore[union-attr]


def test_expired_confirm_link_explains_and_resends_a_fresh_one(
    web: TestClient, engine: Engine, settings: Settings, isolated_env
) -> None:
    subscriber_id = _add(engine, "slow@example.org", Status.PENDING)
    with time_machine.travel(datetime.now(UTC) - timedelta(days=4), tick=False):
        token = make_token(settings, Purpose.CONFIRM, subscriber_id)
    page = web.get(f"/confirm/{token}")
    assert page.status_code == 410 and "expired" in page.text and "Email me a new link" in page.text
    refused = web.post(f"/confirm/{token}", data={"csrf_token": csrf_token(web)})
    assert refused.status_code == 410
    assert _subscriber(engine, "slow@example.org").status == Status.PENDING  # type: ignore[union-attr]
    sent = web.post(f"/confirm/{token}/resend", data={"csrf_token": csrf_token(web)})
    assert sent.status_code == 200 and sent.url.path == "/subscribe/sent"
    [message] = outbox(isolated_env)
    assert message["To"] == "slow@example.org" and links(message, "confirm")


def test_unsubscribed_address_needs_a_fresh_confirmation_and_old_links_stay_dead(
    web: TestClient, engine: Engine, isolated_env
) -> None:
    _sign_up(web)
    old_link = "/" + links(outbox(isolated_env)[0], "confirm")[0].split("/", 3)[3]
    web.post(old_link, data={"csrf_token": csrf_token(web, old_link)})
    with session_scope(engine) as session:
        lifecycle.unsubscribe(session, service.find(session, "ada@example.org"))  # type: ignore[arg-type]
    stale = web.get(old_link)
    assert stale.status_code == 410 and "Sign up again" in stale.text
    web.post(old_link, data={"csrf_token": csrf_token(web)})
    assert _subscriber(engine).status == Status.UNSUBSCRIBED  # type: ignore[union-attr]

    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=2)):
        assert _sign_up(web).status_code == 200
        assert _subscriber(engine).status == Status.PENDING  # type: ignore[union-attr]
        new_link = "/" + links(outbox(isolated_env)[-1], "confirm")[0].split("/", 3)[3]
        assert web.post(old_link, data={"csrf_token": csrf_token(web)}).status_code == 410
        done = web.post(new_link, data={"csrf_token": csrf_token(web, new_link)})
    assert "You're subscribed" in done.text
    assert _subscriber(engine).status == Status.ACTIVE  # type: ignore[union-attr]


@pytest.mark.parametrize("status", [Status.BOUNCED, Status.COMPLAINED])
def test_bounced_or_complained_address_signing_up_again_starts_pending(
    web: TestClient, engine: Engine, status: Status
) -> None:
    _add(engine, "ada@example.org", status)
    assert _sign_up(web).status_code == 200
    assert _subscriber(engine).status == Status.PENDING  # type: ignore[union-attr]


def test_a_request_body_over_the_limit_is_refused_before_parsing(web: TestClient) -> None:
    response = web.post(
        "/subscribe", content=b"a" * 70_000, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413


def test_pages_forbid_framing_referrers_and_foreign_scripts(web: TestClient) -> None:
    headers = web.get("/subscribe").headers
    assert "script-src 'nonce-" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"


def test_health_check_answers_ok(web: TestClient) -> None:
    assert web.get("/healthz").json() == {"status": "ok"}


def test_every_problem_of_the_form_is_shown_at_once_beside_its_field(web: TestClient) -> None:
    response = _sign_up(web, email="nope", interests="", timezone="Mars/Base", max_papers="99")
    assert response.status_code == 400
    beside = field_errors(response.text)
    assert set(beside) == {"email", "interests", "timezone", "max_papers"}
    summary = alert(response.text)
    assert "These 4 fields need a change" in summary
    for name in beside:
        assert f'href="#{name}"' in response.text  # the summary links to each field
        assert re.search(
            rf'id="{name}"[^>]*aria-invalid="true" aria-describedby="{name}-error', response.text
        )


def test_the_preview_ends_with_a_subscribe_button_for_the_same_form(web: TestClient) -> None:
    page = web.post(
        "/subscribe",
        data={"csrf_token": csrf_token(web), "action": "preview", "interests": "graph neural networks"},
    ).text
    preview = page.split('id="preview"', 1)[1]
    assert '<button type="submit" form="signup" name="action" value="subscribe">' in preview
    assert '<form class="card" method="post" action="/subscribe" id="signup"' in page


@pytest.mark.parametrize(
    ("path", "title"),
    [("/subscribe", "Subscribe"), ("/subscribe/sent", "Check your inbox"), ("/nowhere", "Page not found")],
)
def test_pages_have_their_own_titles_and_a_favicon(web: TestClient, path: str, title: str) -> None:
    page = web.get(path).text
    assert f"<title>{title} · Paper Digest</title>" in page
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    icon = web.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
