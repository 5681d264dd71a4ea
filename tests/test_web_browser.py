"""End to end in headless Chromium against uvicorn on loopback: sign up → confirm from the
email → first digest → preferences → "less like this" → unsubscribe. Screenshots of every
page at phone (375 px) and desktop (1280 px) width land in test-artifacts/web/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.db import session_scope
from newsletter.settings import Settings
from subscribers import service
from subscribers.models import Feedback, Status
from tests.support.browser import ARTIFACTS as ALL_ARTIFACTS
from tests.support.browser import launch, shoot
from tests.support.requirements import shared
from tests.support.web import app_on_free_port, links, outbox, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = ALL_ARTIFACTS / "web"


@pytest.fixture
def site(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Settings, Engine]]:
    """The app served by uvicorn on a free loopback port, with the sample papers embedded."""
    from newsletter.papers.importers import import_file
    from newsletter.ranking.service import embed_missing

    port, settings, app = app_on_free_port(monkeypatch)
    engine: Engine = app.state.web.engine
    with session_scope(engine) as session:
        import_file(session, shared("data/papers-page.txt"))
    with session_scope(engine) as session:
        embed_missing(session, settings)
    with serve(app, port) as url:
        yield url, settings, engine


def _shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    shoot(page, ARTIFACTS, name)


def _only(items: list[str]) -> str:
    assert items, "link not found in the email"
    return items[0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sign_up_to_first_digest_to_unsubscribe_in_a_real_browser(
    site: tuple[str, Settings, Engine], isolated_env: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from jobs.send import send_digests

    url, settings, engine = site
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(timezone_id="Europe/Berlin")
            page = context.new_page()

            page.goto(f"{url}/subscribe")
            expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")  # from the browser
            _shoot(page, "01-subscribe")
            page.get_by_label("Email address").fill("ada@example.org")
            page.get_by_role("button", name="+ diffusion models").click()
            page.get_by_label("Interests").press_sequentially("\nvideo generation")
            page.get_by_role("button", name="Preview today's papers").click()
            expect(page.get_by_role("heading", name="Today's email would contain")).to_be_visible()
            assert page.locator("#preview .papers li").count() > 0
            _shoot(page, "02-preview")
            page.get_by_role("button", name="Subscribe with these interests").click()
            expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
            _shoot(page, "03-check-inbox")

            [confirmation] = outbox(isolated_env)
            confirm_link = _only(links(confirmation, "confirm"))
            no_js = browser.new_context(java_script_enabled=False).new_page()
            no_js.goto(confirm_link)  # a link scanner, or a browser without scripts
            expect(no_js.get_by_role("button", name="Confirm my subscription")).to_be_visible()
            _shoot(no_js, "04-confirm")
            with Session(engine) as session:
                assert service.find(session, "ada@example.org").status == Status.PENDING  # type: ignore[union-attr]

            page.goto(confirm_link)  # the page posts itself
            expect(page.get_by_role("heading", name="You're subscribed")).to_be_visible()
            _shoot(page, "05-confirmed")
            with Session(engine) as session:
                subscriber = service.find(session, "ada@example.org")
            assert subscriber is not None and subscriber.status == Status.ACTIVE
            assert subscriber.timezone == "Europe/Berlin"
            assert subscriber.interests == ["diffusion models", "video generation"]

            report = send_digests(engine, settings, digest_date=datetime.now(UTC).date())
            assert report.sent == 1, report
            digest = outbox(isolated_env)[-1]
            feedback_links = links(digest, "feedback")
            less = _only([link for link in feedback_links if "vote=down" in link])

            page.goto(_only(links(digest, "preferences")))
            expect(page.get_by_role("heading", name="Your preferences")).to_be_visible()
            _shoot(page, "06-preferences")
            page.get_by_label("Interests").fill("diffusion models\nauthor: Jonathan Ho\n-medical imaging")
            page.get_by_role("button", name="Save preferences").click()
            expect(page.get_by_role("status")).to_contain_text("Saved")
            _shoot(page, "07-preferences-saved")

            page.goto(less)
            expect(page.get_by_role("heading", name="Noted: less like this")).to_be_visible()
            _shoot(page, "08-less-like-this")

            page.goto(_only(links(digest, "unsubscribe")))
            expect(page.get_by_role("heading", name="Unsubscribe?")).to_be_visible()
            _shoot(page, "09-unsubscribe")
            page.get_by_role("button", name="Unsubscribe").click()
            expect(page.get_by_role("heading", name="You're unsubscribed")).to_be_visible()
            _shoot(page, "10-unsubscribed")
        finally:
            browser.close()

    with Session(engine) as session:
        subscriber = service.find(session, "ada@example.org")
        assert subscriber is not None and subscriber.status == Status.UNSUBSCRIBED
        assert subscriber.interests == ["diffusion models", "author: Jonathan Ho", "-medical imaging"]
        votes = list(session.exec(select(Feedback.vote).where(Feedback.subscriber_id == subscriber.id)))
    assert votes == [-1]
    assert len(list(ARTIFACTS.glob("*.png"))) >= 20
