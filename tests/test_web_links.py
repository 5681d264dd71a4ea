"""The pages emails link to: preferences, unsubscribe (RFC 8058 one-click) and feedback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.db import session_scope
from newsletter.settings import Settings
from newsletter.tokens import Purpose, make_token
from subscribers import service
from subscribers.models import Feedback, Status, Subscriber
from tests.support.papers import make_paper
from tests.support.web import alert, client, csrf_token, field_errors


def _add(engine: Engine, email: str = "ada@example.org") -> int:
    with session_scope(engine) as session:
        data = service.build_create(email, "graph neural networks, author: Yoshua Bengio", confirmed=True)
        return service.create(session, data).id or 0


def _paper(engine: Engine, index: int = 1) -> int:
    with session_scope(engine) as session:
        paper = make_paper(index)
        session.add(paper)
        session.flush()
        return paper.id or 0


def _get(engine: Engine, subscriber_id: int) -> Subscriber | None:
    with Session(engine) as session:
        return session.get(Subscriber, subscriber_id)


def _votes(engine: Engine, subscriber_id: int) -> list[tuple[int, int]]:
    with Session(engine) as session:
        rows = session.exec(select(Feedback).where(Feedback.subscriber_id == subscriber_id))
        return [(row.paper_id, row.vote) for row in rows]


def _path(settings: Settings, purpose: Purpose, subscriber_id: int) -> str:
    return f"/{purpose.value}/{make_token(settings, purpose, subscriber_id)}"


# --- preferences ------------------------------------------------------------------------------


PREFS = {
    "action": "save",
    "interests": "diffusion models\nauthor: Geoffrey Hinton\n-medical imaging",
    "frequency": "weekly",
    "weekday": "4",
    "send_hour": "18",
    "timezone": "America/New_York",
    "max_papers": "7",
    "send_empty": "on",
}


def test_preferences_page_saves_every_setting(web: TestClient, engine: Engine, settings: Settings) -> None:
    subscriber_id = _add(engine)
    path = _path(settings, Purpose.PREFERENCES, subscriber_id)
    page = web.get(path)
    assert page.status_code == 200 and "author: Yoshua Bengio" in page.text
    saved = web.post(path, data={"csrf_token": csrf_token(web, path), **PREFS})
    assert saved.status_code == 200 and "Saved." in saved.text
    subscriber = _get(engine, subscriber_id)
    assert subscriber is not None
    assert subscriber.interests == ["diffusion models", "author: Geoffrey Hinton", "-medical imaging"]
    assert (subscriber.frequency, subscriber.weekday, subscriber.send_hour) == ("weekly", 4, 18)
    assert (subscriber.timezone, subscriber.max_papers, subscriber.send_empty) == (
        "America/New_York",
        7,
        True,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("interests", "", "no interests given"),
        ("interests", "z" * 5001, "keep them under 5000"),
        ("timezone", "Nowhere/Land", "unknown timezone"),
        ("send_hour", "24", "outside 0–23"),
        ("max_papers", "51", "outside 1–50"),
        ("weekday", "funday", "unknown weekday"),
    ],
)
def test_preferences_reject_bad_input_keep_it_and_change_nothing(
    web: TestClient, engine: Engine, settings: Settings, field: str, value: str, message: str
) -> None:
    subscriber_id = _add(engine)
    path = _path(settings, Purpose.PREFERENCES, subscriber_id)
    response = web.post(path, data={"csrf_token": csrf_token(web, path), **PREFS, field: value})
    assert response.status_code == 400 and message.lower() in alert(response.text).lower()
    assert message.lower() in field_errors(response.text)[field].lower()
    kept = 'value="America/New_York"' if field != "timezone" else "author: Geoffrey Hinton"
    assert kept in response.text  # the rest of the input is kept
    assert _get(engine, subscriber_id).interests == ["graph neural networks", "author: Yoshua Bengio"]  # type: ignore[union-attr]


def test_preferences_without_csrf_token_change_nothing(app, engine: Engine, settings: Settings) -> None:
    subscriber_id = _add(engine)
    with client(app) as web:
        response = web.post(_path(settings, Purpose.PREFERENCES, subscriber_id), data=PREFS)
    assert response.status_code == 403
    assert _get(engine, subscriber_id).frequency == "daily"  # type: ignore[union-attr]


def test_pause_and_resume(web: TestClient, engine: Engine, settings: Settings) -> None:
    subscriber_id = _add(engine)
    path = _path(settings, Purpose.PREFERENCES, subscriber_id)
    paused = web.post(path, data={"csrf_token": csrf_token(web, path), "action": "pause"})
    assert "Resume my digest" in paused.text and _get(engine, subscriber_id).status == Status.PAUSED  # type: ignore[union-attr]
    web.post(path, data={"csrf_token": csrf_token(web, path), "action": "resume"})
    assert _get(engine, subscriber_id).status == Status.ACTIVE  # type: ignore[union-attr]


def test_liked_and_disliked_papers_are_listed_and_exported(
    web: TestClient, engine: Engine, settings: Settings
) -> None:
    subscriber_id = _add(engine)
    liked, disliked = _paper(engine, 1), _paper(engine, 2)
    with session_scope(engine) as session:
        session.add(Feedback(subscriber_id=subscriber_id, paper_id=liked, vote=1))
        session.add(Feedback(subscriber_id=subscriber_id, paper_id=disliked, vote=-1))
    path = _path(settings, Purpose.PREFERENCES, subscriber_id)
    page = web.get(path).text
    assert (
        page.index("More like these") < page.index("Graph neural networks") < page.index("Fewer like these")
    )
    download = web.get(f"{path}/data.json")
    assert download.headers["content-disposition"].startswith("attachment")
    data = json.loads(download.text)
    assert data["subscriber"]["email"] == "ada@example.org"
    assert sorted(item["vote"] for item in data["feedback"]) == [-1, 1]
    assert set(data) == {"subscriber", "feedback", "deliveries", "mail_events"}


def test_delete_me_asks_first_then_erases_everything(
    web: TestClient, engine: Engine, settings: Settings
) -> None:
    subscriber_id = _add(engine)
    paper = _paper(engine)
    with session_scope(engine) as session:
        session.add(Feedback(subscriber_id=subscriber_id, paper_id=paper, vote=1))
    path = _path(settings, Purpose.PREFERENCES, subscriber_id)
    ask = web.get(f"{path}/delete")
    assert ask.status_code == 200 and _get(engine, subscriber_id) is not None
    assert web.post(f"{path}/delete").status_code == 403  # no CSRF token: nothing erased
    done = web.post(f"{path}/delete", data={"csrf_token": csrf_token(web, f"{path}/delete")})
    assert done.status_code == 200 and "gone" in done.text
    assert _get(engine, subscriber_id) is None and _votes(engine, subscriber_id) == []
    assert web.get(path).status_code == 404


# --- tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "purpose", [Purpose.PREFERENCES, Purpose.UNSUBSCRIBE, Purpose.FEEDBACK, Purpose.CONFIRM]
)
def test_tampered_and_wrong_purpose_tokens_are_refused(
    web: TestClient, engine: Engine, settings: Settings, purpose: Purpose
) -> None:
    subscriber_id = _add(engine)
    token = make_token(settings, purpose, subscriber_id)
    query = "?paper=1&vote=up" if purpose == Purpose.FEEDBACK else ""
    tampered = web.get(f"/{purpose.value}/{token[:-3]}xyz{query}")
    assert tampered.status_code == 400 and "not valid" in tampered.text
    for other in Purpose:
        if other != purpose:
            suffix = "/atom.xml" if other == Purpose.FEED else ""
            wrong = web.get(f"/{other.value}/{token}{suffix}?paper=1&vote=up")
            assert wrong.status_code == 400, (purpose, other)
    foreign = web.post(f"/unsubscribe/{make_token(settings, Purpose.FEEDBACK, subscriber_id)}")
    assert foreign.status_code == 400
    assert _get(engine, subscriber_id).status == Status.ACTIVE  # type: ignore[union-attr]


@pytest.mark.parametrize("purpose", [Purpose.PREFERENCES, Purpose.FEEDBACK])
def test_expired_links_explain_and_point_to_the_latest_digest(
    web: TestClient, engine: Engine, settings: Settings, purpose: Purpose
) -> None:
    subscriber_id = _add(engine)
    with time_machine.travel(datetime.now(UTC) - timedelta(days=61), tick=False):
        token = make_token(settings, purpose, subscriber_id)
    response = web.get(f"/{purpose.value}/{token}?paper=1&vote=up")
    assert response.status_code == 410 and "latest digest" in response.text


# --- unsubscribe --------------------------------------------------------------------------------


def test_unsubscribe_get_only_shows_a_button_and_post_unsubscribes_at_once(
    web: TestClient, engine: Engine, settings: Settings
) -> None:
    subscriber_id = _add(engine)
    path = _path(settings, Purpose.UNSUBSCRIBE, subscriber_id)
    page = web.get(path)
    assert (
        page.status_code == 200 and '<button type="submit" class="danger">Unsubscribe</button>' in page.text
    )
    assert _get(engine, subscriber_id).status == Status.ACTIVE  # type: ignore[union-attr]
    done = web.post(path)
    assert done.status_code == 200 and "You're unsubscribed" in done.text
    subscriber = _get(engine, subscriber_id)
    assert subscriber is not None and subscriber.status == Status.UNSUBSCRIBED and subscriber.unsubscribed_at


def test_rfc8058_one_click_post_without_cookies_unsubscribes(app, engine: Engine, settings: Settings) -> None:
    subscriber_id = _add(engine)
    path = _path(settings, Purpose.UNSUBSCRIBE, subscriber_id)
    with client(app) as mail_provider:
        response = mail_provider.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200 and "cookie" not in response.request.headers
        assert "set-cookie" not in response.headers
    assert _get(engine, subscriber_id).status == Status.UNSUBSCRIBED  # type: ignore[union-attr]


def test_an_old_unsubscribe_link_still_unsubscribes(
    web: TestClient, engine: Engine, settings: Settings
) -> None:
    subscriber_id = _add(engine)
    with time_machine.travel(datetime.now(UTC) - timedelta(days=400), tick=False):
        path = _path(settings, Purpose.UNSUBSCRIBE, subscriber_id)
    assert web.post(path).status_code == 200
    assert _get(engine, subscriber_id).status == Status.UNSUBSCRIBED  # type: ignore[union-attr]


# --- feedback -----------------------------------------------------------------------------------


def test_feedback_link_records_nothing_until_the_page_posts_and_can_be_undone(
    web: TestClient, engine: Engine, settings: Settings
) -> None:
    subscriber_id, paper = _add(engine), _paper(engine)
    path = _path(settings, Purpose.FEEDBACK, subscriber_id)
    page = web.get(f"{path}?paper={paper}&vote=down")
    assert page.status_code == 200 and "Less like this?" in page.text and 'id="auto-submit"' in page.text
    assert _votes(engine, subscriber_id) == []
    token = csrf_token(web, f"{path}?paper={paper}&vote=down")
    for _ in range(2):  # idempotent
        done = web.post(path, data={"csrf_token": token, "paper": str(paper), "vote": "down"})
        assert done.status_code == 200 and "Noted: less like this" in done.text and "Undo" in done.text
    assert _votes(engine, subscriber_id) == [(paper, -1)]
    web.post(path, data={"csrf_token": token, "paper": str(paper), "vote": "up"})
    assert _votes(engine, subscriber_id) == [(paper, 1)]
    undone = web.post(path, data={"csrf_token": token, "paper": str(paper), "vote": "none"})
    assert "Vote removed" in undone.text and _votes(engine, subscriber_id) == []


@pytest.mark.parametrize(
    ("query", "status"),
    [("?paper=999999&vote=up", 404), ("?paper=abc&vote=up", 400), ("?paper=1&vote=sideways", 400), ("", 400)],
)
def test_feedback_links_with_bad_paper_or_vote_are_refused(
    web: TestClient, engine: Engine, settings: Settings, query: str, status: int
) -> None:
    subscriber_id = _add(engine)
    _paper(engine)
    assert web.get(f"{_path(settings, Purpose.FEEDBACK, subscriber_id)}{query}").status_code == status


def test_feedback_post_without_csrf_records_nothing(app, engine: Engine, settings: Settings) -> None:
    subscriber_id, paper = _add(engine), _paper(engine)
    with client(app) as web:
        response = web.post(
            _path(settings, Purpose.FEEDBACK, subscriber_id), data={"paper": str(paper), "vote": "up"}
        )
    assert response.status_code == 403 and _votes(engine, subscriber_id) == []
