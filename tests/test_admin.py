"""The admin web app: who may get in (operators from the CLI, signed sessions, CSRF, rate
limits, lock-out), and that its numbers, charts and buttons tell the truth about the rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from jobs import metrics
from newsletter import operators
from newsletter.db import session_scope
from newsletter.delivery.models import Delivery, DeliveryStatus
from newsletter.settings import Settings
from newsletter.web import create_app
from newsletter.web.admin.charts import CHARTS
from subscribers import service
from subscribers.models import Status
from tests.support.activity import make_month
from tests.support.web import client, csrf_token

PASSWORD = "correct horse battery staple"
ADMIN_PAGES = ["/admin", "/admin/subscribers", "/admin/deliveries", "/admin/papers"]
ADMIN_POSTS = ["/admin/subscribers/1/lift", "/admin/deliveries/1/retry", "/admin/logout"]


def _operator(engine: Engine, name: str = "alice") -> None:
    with session_scope(engine) as session:
        operators.create(session, name, PASSWORD)


def _login(web: TestClient, name: str = "alice", password: str = PASSWORD, next_: str = "/admin"):  # type: ignore[no-untyped-def]
    token = csrf_token(web, "/admin/login")
    return web.post(
        "/admin/login", data={"csrf_token": token, "name": name, "password": password, "next": next_}
    )


@pytest.fixture
def month(engine: Engine, settings: Settings):  # type: ignore[no-untyped-def]
    return make_month(engine, settings, datetime.now(UTC).date())


def test_without_a_session_every_admin_url_redirects_or_answers_401_and_shows_no_data(
    app: FastAPI, engine: Engine, month
) -> None:  # type: ignore[no-untyped-def]
    stranger = client(app)
    for path in ADMIN_PAGES:
        answer = stranger.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/login?next=")
    for name in CHARTS:
        answer = stranger.get(f"/admin/charts/{name}.svg")
        assert answer.status_code == 401 and "<svg" not in answer.text
    for path in ADMIN_POSTS:
        answer = stranger.post(path, data={"csrf_token": csrf_token(stranger, "/admin/login")})
        assert answer.status_code == 401
    with Session(engine) as session:
        assert (
            session.exec(select(Delivery).where(Delivery.status == DeliveryStatus.SENT)).first() is not None
        )
    login_page = stranger.get("/admin", follow_redirects=True)
    assert login_page.url.path == "/admin/login"
    assert "@example.org" not in login_page.text


def test_there_are_no_default_credentials_and_an_operator_from_the_cli_logs_in(
    web: TestClient, engine: Engine
) -> None:
    for name, password in [("admin", "admin"), ("admin", "password"), ("root", "")]:
        assert _login(web, name, password).status_code == 401
    _operator(engine)
    answer = _login(web, "Alice ", PASSWORD, "/admin/subscribers")
    assert answer.status_code == 200 and answer.url.path == "/admin/subscribers"
    cookie = next(c for c in web.cookies.jar if c.name == "nl_admin")
    assert cookie.path == "/admin" and cookie.has_nonstandard_attr("HttpOnly")


def test_login_needs_the_forms_csrf_token(app: FastAPI, engine: Engine) -> None:
    _operator(engine)
    web = client(app)
    web.get("/admin/login")
    answer = web.post("/admin/login", data={"csrf_token": "forged", "name": "alice", "password": PASSWORD})
    assert answer.status_code == 403 and "nl_admin" not in web.cookies


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one_for_15_minutes(
    web: TestClient, engine: Engine
) -> None:
    _operator(engine)
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False):
        for _ in range(operators.LOCK_AFTER):
            wrong = _login(web, "alice", "not the password at all")
            assert wrong.status_code == 401
        locked = _login(web, "alice", PASSWORD)
        assert locked.status_code == 401 and "nl_admin" not in web.cookies
        assert locked.text.count("Wrong name or password") == 1  # the same words as any failure
    with time_machine.travel(start + operators.LOCK_FOR - timedelta(seconds=5), tick=False):
        assert _login(web, "alice", PASSWORD).status_code == 401
    with time_machine.travel(start + operators.LOCK_FOR + timedelta(seconds=1), tick=False):
        assert _login(web, "alice", PASSWORD).status_code == 200


def test_login_attempts_are_rate_limited_per_client(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, web_settings: Settings
) -> None:
    _operator(engine)
    monkeypatch.setenv("NEWSLETTER_ADMIN_LOGIN_LIMIT_PER_IP", "3/minute")
    web = client(create_app(Settings()))
    codes = [_login(web, f"nobody{n}", "wrong password!").status_code for n in range(3)]
    assert codes == [401, 401, 401]
    assert _login(web).status_code == 429  # even the right password waits


def test_a_tampered_session_is_refused_and_logging_out_ends_every_copy_of_it(
    app: FastAPI, engine: Engine
) -> None:
    _operator(engine)
    web = client(app)
    _login(web)
    stolen = web.cookies["nl_admin"]
    head, _, sig = stolen.rpartition(".")
    forged = client(app)
    forged.cookies.set("nl_admin", f"{head}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}", path="/admin")
    assert forged.get("/admin", follow_redirects=False).status_code == 303
    assert (
        web.post("/admin/logout", data={"csrf_token": csrf_token(web, "/admin")}).url.path == "/admin/login"
    )
    replay = client(app)
    replay.cookies.set("nl_admin", stolen, path="/admin")
    assert replay.get("/admin", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example", "/subscribe", "/admin\\@evil"]
)
def test_after_login_it_only_goes_to_admin_pages_of_this_site(
    web: TestClient, engine: Engine, target: str
) -> None:
    _operator(engine)
    assert _login(web, next_=target).url.path == "/admin"


def test_dashboard_numbers_and_charts_are_the_rows_of_the_month(
    web: TestClient, engine: Engine, month
) -> None:  # type: ignore[no-untyped-def]
    _operator(engine)
    _login(web)
    today = month.last
    with Session(engine) as session:
        tables = {
            "digests": metrics.digests(session, 30, today),
            "events": metrics.provider_events(session, 30, today),
            "subscribers": metrics.subscribers(session, 30, today),
            "votes": metrics.votes(session, 30, today),
            "lag": metrics.dispatch_lag(session, 30, today),
            "papers": metrics.papers_per_digest(session, 30, today),
        }
    for name, series in [
        ("digests", ["sent", "skipped"]),
        ("events", ["delivered", "opened", "clicked", "bounced", "complaints"]),
        ("subscribers", ["confirmed", "unsubscribed"]),
        ("votes", ["more", "less"]),
    ]:
        for key in series:
            made = [month.expected.get(key, {}).get(day, 0) for day in tables[name].days]
            assert tables[name].series[key] == made, (name, key)
    assert tables["digests"].total("failed") == 0
    assert tables["lag"].series["worst_minutes"] == [float(n % 5) for n in range(30)]
    sent_days = [d for d in tables["papers"].days if month.expected["sent"][d] + month.expected["skipped"][d]]
    for day in sent_days:
        i = tables["papers"].days.index(day)
        composed = month.expected["sent"][day] + month.expected["skipped"][day]
        assert tables["papers"].series["papers"][i] == round(month.expected["papers"][day] / composed, 2)
        assert tables["papers"].series["empty_percent"][i] == round(
            100 * month.expected["skipped"][day] / composed, 1
        )

    page = web.get("/admin?days=30").text
    assert f"<dd>{month.total('sent')}</dd>" in page
    svg = web.get("/admin/charts/digests.svg?days=30")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<script" not in svg.text.split("<defs>")[0] and "kozea.github.io" not in svg.text
    sent_series = re.search(
        r'class="series serie-0 color-0">(.*?)</g>\s*<g class="series', svg.text, re.DOTALL
    )
    assert sent_series, "no first series in the digests chart"
    values = [float(v) for v in re.findall(r'<desc class="value">([\d.]+)</desc>', sent_series.group(1))]
    assert sum(values) == month.total("sent")
    interests = web.get("/admin/charts/interests.svg").text
    assert "graph neural networks" in interests and "speech recognition" in interests


def test_subscriber_search_and_lifting_a_bounce_but_not_a_complaint(
    web: TestClient, engine: Engine, month
) -> None:  # type: ignore[no-untyped-def]
    _operator(engine)
    _login(web)
    found = web.get("/admin/subscribers", params={"q": "BARB", "status": "bounced"}).text
    assert "barbara@example.org" in found and "ada@example.org" not in found
    with Session(engine) as session:
        barbara = service.require(session, "barbara@example.org")
        alan = service.require(session, "alan@example.org")
    assert barbara.status == Status.BOUNCED and alan.status == Status.COMPLAINED
    token = csrf_token(web, "/admin/subscribers")
    done = web.post(f"/admin/subscribers/{barbara.id}/lift", data={"csrf_token": token, "q": "barb"})
    assert "barbara@example.org gets digests again" in done.text
    refused = web.post(f"/admin/subscribers/{alan.id}/lift", data={"csrf_token": token})
    assert "reported spam themselves" in refused.text
    forged = web.post(f"/admin/subscribers/{barbara.id}/lift", data={"csrf_token": "x"})
    assert "expired" in forged.text
    with Session(engine) as session:
        assert service.require(session, "barbara@example.org").status == Status.ACTIVE
        assert service.require(session, "alan@example.org").status == Status.COMPLAINED


def test_a_failed_digest_is_sent_again_from_the_deliveries_page(
    web: TestClient, engine: Engine, month, isolated_env
) -> None:  # type: ignore[no-untyped-def]
    _operator(engine)
    _login(web)
    with session_scope(engine) as session:
        row = session.exec(
            select(Delivery).where(Delivery.digest_date == month.last, Delivery.status == DeliveryStatus.SENT)
        ).first()
        assert row is not None
        session.execute(
            update(Delivery)
            .where(Delivery.id == row.id)
            .values(status=DeliveryStatus.FAILED, last_error="HTTP 500")  # type: ignore[arg-type]
        )
        failed_id = row.id
    page = web.get("/admin/deliveries", params={"date": month.last.isoformat(), "status": "failed"}).text
    assert "HTTP 500" in page and f"/admin/deliveries/{failed_id}/retry" in page
    token = csrf_token(web, "/admin/deliveries")
    answer = web.post(
        f"/admin/deliveries/{failed_id}/retry", data={"csrf_token": token, "date": month.last.isoformat()}
    )
    assert "1 sent" in answer.text
    with Session(engine) as session:
        assert session.get(Delivery, failed_id).status == DeliveryStatus.SENT  # type: ignore[union-attr]


def test_todays_papers_page_lists_papers_with_how_many_digests_carried_them(
    web: TestClient, engine: Engine, month
) -> None:  # type: ignore[no-untyped-def]
    _operator(engine)
    _login(web)
    page = web.get("/admin/papers", params={"date": month.first.isoformat()}).text
    assert page.count("<tr>") == 41  # the header and 40 papers
    empty = web.get("/admin/papers", params={"date": "2001-01-01"}).text
    assert "No papers were first seen" in empty


# --- the CLI that creates operators -----------------------------------------------------------


def test_operators_are_made_listed_given_a_new_password_and_removed_with_the_cli(
    cli, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    added = cli("operators", "add", "Alice", "--password-stdin", input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert '"name": "alice"' in cli("operators", "list", "--format", "json").output
    assert cli("operators", "add", "alice", "--password-stdin", input=PASSWORD + "\n").exit_code == 2
    short = cli("operators", "add", "bob", "--password-stdin", input="short\n")
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    assert (
        cli("operators", "password", "alice", "--password-stdin", input="another long password\n").exit_code
        == 0
    )
    assert cli("operators", "remove", "alice", "--yes").exit_code == 0
    assert cli("operators", "list", "--format", "json").output.strip() == "[]"
    assert cli("operators", "remove", "nobody", "--yes").exit_code == 2
