"""What a reader opens besides the email: "view in browser", their private Atom feed, and the
optional public page of trending papers."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from newsletter.db import session_scope
from newsletter.delivery import outbox
from newsletter.delivery.outbox import Plan, SendReport
from newsletter.delivery.transports import get_transport
from newsletter.digest.context import DigestItem
from newsletter.settings import Settings
from newsletter.web import create_app
from subscribers import service
from tests.support.papers import make_paper
from tests.support.web import body_text, client
from tests.support.web import outbox as sent_mail

DAY = date(2026, 11, 27)


def send_digest(
    engine: Engine, settings: Settings, home: Path, email: str = "ada@example.org"
) -> EmailMessage:
    """Record and send one real digest of three papers (one without any page of its own)
    through the outbox and the file transport; returns the email."""
    with session_scope(engine) as session:
        subscriber = service.create(
            session, service.build_create(email, "graph neural networks", confirmed=True)
        )
        papers = [make_paper(i, upvotes=3) for i in range(3)]
        papers[2] = make_paper(2, url=None, arxiv_id=None, pdf_url=None, source_id="local-2")
        session.add_all(papers)
        session.flush()
        items = [
            DigestItem(paper, "graph neural networks", f"Sentence {n}.", strength=0.8)
            for n, paper in enumerate(papers)
        ]
        plan = Plan(subscriber, items)
    report = SendReport(digest_date=DAY, transport=settings.transport)
    outbox.record(engine, settings, [plan], DAY, report)
    with get_transport(settings) as transport:
        outbox.send_pending(engine, settings, transport, DAY, None, None, [], report)
    assert report.sent == 1, report
    return sent_mail(home)[-1]


def _link(message: EmailMessage, pattern: str) -> str:
    found = re.findall(rf"https?://[^\s<>\"]+/{pattern}", body_text(message))
    assert found, f"no {pattern} link in the email"
    return found[0]


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _tampered(path: str) -> str:
    """The same link with one character of its token's signature changed."""
    parts = path.split("/")  # "", purpose, token, rest…
    payload, sig = parts[2].rsplit(".", 1)
    parts[2] = f"{payload}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"
    return "/".join(parts)


def test_view_in_browser_shows_the_readers_digest_and_refuses_a_tampered_link(
    web: TestClient, engine: Engine, settings: Settings, isolated_env: Path
) -> None:
    message = send_digest(engine, settings, isolated_env)
    view = _path(_link(message, r"archive/[^\s#]+"))
    assert view in message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    page = web.get(view)
    assert page.status_code == 200
    assert "3 new papers for you" in page.text
    assert page.text.count("We study") >= 3  # the whole abstract of every paper
    assert 'id="paper-' in page.text
    assert web.get(_tampered(view)).status_code == 400
    feedback_token = re.search(r"/feedback/([^?\s]+)", body_text(message)).group(1)  # type: ignore[union-attr]
    assert web.get(f"/archive/{feedback_token}").status_code == 400  # a token of another purpose


def test_a_paper_without_a_page_links_to_its_archive_entry_which_answers(
    web: TestClient, engine: Engine, settings: Settings, isolated_env: Path
) -> None:
    message = send_digest(engine, settings, isolated_env)
    reads = re.findall(r"Read: (\S+)", body_text(message))
    local = [url for url in reads if "/archive/" in url]
    assert len(local) == 1 and "#paper-" in local[0]
    path, anchor = _path(local[0]).split("#")
    page = web.get(path)
    assert page.status_code == 200 and f'id="{anchor}"' in page.text


def test_private_feed_is_valid_atom_of_the_readers_picks_and_refuses_a_tampered_link(
    web: TestClient, engine: Engine, settings: Settings, isolated_env: Path
) -> None:
    message = send_digest(engine, settings, isolated_env)
    feed_path = _path(_link(message, r"feed/\S+/atom\.xml"))
    answer = web.get(feed_path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(answer.content)
    assert parsed.bozo == 0, parsed.bozo_exception
    assert parsed.version == "atom10"
    titles = [entry.title for entry in parsed.entries]
    assert titles == [make_paper(i).title for i in range(3)]
    assert parsed.entries[0].link == "https://arxiv.org/abs/2611.00000"
    assert "/archive/" in parsed.entries[2].link  # no page of its own
    assert "Sentence 0." in parsed.entries[0].summary
    assert len({entry.id for entry in parsed.entries}) == 3
    assert web.get(_tampered(feed_path)).status_code == 400


def test_a_readers_feed_never_shows_another_readers_picks(
    web: TestClient, engine: Engine, settings: Settings, isolated_env: Path
) -> None:
    first = send_digest(engine, settings, isolated_env, "ada@example.org")
    feed = web.get(_path(_link(first, r"feed/\S+/atom\.xml")))
    with session_scope(engine) as session:
        grace = service.create(session, service.build_create("grace@example.org", "speech", confirmed=True))
    from newsletter.digest.context import feed_url

    empty = feedparser.parse(web.get(_path(feed_url(settings, grace.id or 0))).content)
    assert len(feedparser.parse(feed.content).entries) == 3 and empty.entries == []


def test_public_trending_page_is_off_by_default_and_lists_the_days_upvoted_papers(
    web_settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = datetime.now(UTC)
    with session_scope(engine) as session:
        session.add(make_paper(1, upvotes=42, first_seen_at=today))
        session.add(make_paper(2, upvotes=None, first_seen_at=today))
    with client(create_app(web_settings)) as closed:
        assert closed.get("/trending").status_code == 404
    monkeypatch.setenv("NEWSLETTER_PUBLIC_ARCHIVE", "true")
    with client(create_app(Settings())) as public:
        page = public.get("/trending")
        assert page.status_code == 200
        assert make_paper(1).title in page.text and "▲ 42" in page.text
        assert make_paper(2).title not in page.text
        assert public.get(f"/trending/{today.date().isoformat()}").status_code == 200
        assert public.get("/trending/not-a-date").status_code == 404
        assert public.get("/trending/2999-01-01").status_code == 404
