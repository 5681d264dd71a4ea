"""The admin web app in headless Chromium against uvicorn on loopback: a stranger sees only the
login form; an operator logs in, sees charts drawn from a month of real rows, finds a bounced
reader and lifts the bounce. Screenshots at 375 and 1280 px land in test-artifacts/admin/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from newsletter import operators
from newsletter.db import session_scope
from newsletter.web.admin.charts import CHARTS
from subscribers import service
from subscribers.models import Status
from tests.support.activity import Month, make_month
from tests.support.browser import ARTIFACTS, browser, shoot
from tests.support.web import app_on_free_port, serve

pytestmark = [pytest.mark.browser]
__all__ = ["browser"]  # the module-scoped Chromium fixture

SHOTS = ARTIFACTS / "admin"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_site(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Engine, Month]]:
    port, settings, app = app_on_free_port(monkeypatch)
    engine: Engine = app.state.web.engine
    month = make_month(engine, settings, datetime.now(UTC).date())
    with session_scope(engine) as session:
        operators.create(session, "alice", PASSWORD)
    with serve(app, port) as url:
        yield url, engine, month


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_operator_logs_in_reads_the_charts_finds_a_reader_and_lifts_a_bounce(
    browser: Any, admin_site: tuple[str, Engine, Month], scheme: str
) -> None:
    from playwright.sync_api import expect

    url, engine, month = admin_site
    context = browser.new_context(color_scheme=scheme)
    try:
        page = context.new_page()
        for path in ("/admin", "/admin/subscribers", "/admin/deliveries", "/admin/papers"):
            page.goto(url + path)
            expect(page.get_by_role("heading", name="Operator login")).to_be_visible()
            assert "@example.org" not in page.content()
        chart = page.request.get(f"{url}/admin/charts/digests.svg")
        assert chart.status == 401 and "<svg" not in chart.text()
        shoot(page, SHOTS, f"01-login-{scheme}")

        page.get_by_label("Name").fill("alice")
        page.get_by_label("Password").fill("wrong password, sorry")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_contain_text("Wrong name or password")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(
            page.get_by_role("heading", name="Papers first seen")
        ).to_be_visible()  # back where it was going

        page.goto(f"{url}/admin?days=30")
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        _charts_are_drawn_from_the_rows(page, url, month)
        _fits_a_phone(page)
        shoot(page, SHOTS, f"02-dashboard-{scheme}", reload=True)

        page.get_by_role("link", name="Subscribers").click()
        page.get_by_label("Address contains").fill("barbara")
        page.get_by_role("button", name="Search").click()
        row = page.get_by_role("row").filter(has_text="barbara@example.org")
        expect(row).to_contain_text("Bounced")
        shoot(page, SHOTS, f"03-subscribers-{scheme}")
        row.get_by_role("button", name="Lift the bounce of barbara@example.org").click()
        expect(page.get_by_role("status")).to_contain_text("barbara@example.org gets digests again")
        expect(page.get_by_role("row").filter(has_text="barbara@example.org")).to_contain_text("Active")
        _fits_a_phone(page)
        shoot(page, SHOTS, f"04-lifted-{scheme}")

        page.get_by_role("link", name="Deliveries").click()
        expect(page.get_by_role("heading", name="Deliveries")).to_be_visible()
        shoot(page, SHOTS, f"05-deliveries-{scheme}")
        page.get_by_role("button", name="Log out alice").click()
        expect(page.get_by_role("heading", name="Operator login")).to_be_visible()
        page.goto(url + "/admin")
        expect(page.get_by_role("heading", name="Operator login")).to_be_visible()
    finally:
        context.close()
    with Session(engine) as session:
        assert service.require(session, "barbara@example.org").status == Status.ACTIVE


def _fits_a_phone(page: Any) -> None:
    """At 375 px nothing scrolls sideways but the tables inside their own scrollers."""
    page.set_viewport_size({"width": 375, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def _charts_are_drawn_from_the_rows(page: Any, url: str, month: Month) -> None:
    """Every chart image loaded as a picture, and the digests chart carries the month's numbers."""
    images = page.locator("figure.chart img")
    assert images.count() == len(CHARTS)
    for index in range(images.count()):
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    tile = page.locator(".tiles div").filter(has_text="Digests sent").locator("dd")
    assert tile.inner_text() == str(month.total("sent"))
    svg = page.request.get(f"{url}/admin/charts/digests.svg?days=30").text()  # the same cookies
    first = re.search(r'class="series serie-0 color-0">(.*?)</g>\s*<g class="series', svg, re.DOTALL)
    assert first is not None
    drawn = [float(v) for v in re.findall(r'<desc class="value">([\d.]+)</desc>', first.group(1))]
    assert sum(drawn) == month.total("sent") > 0
    table = page.locator("#chart-digests table")
    assert table.locator("tbody tr").count() == 30
