"""The digest in a real browser: phone and desktop widths, light and dark, no sideways scroll."""

from __future__ import annotations

from datetime import date

import pytest

from newsletter.digest.context import DigestItem
from newsletter.digest.render import render_digest
from newsletter.settings import Settings
from tests.support.browser import ARTIFACTS, browser
from tests.support.papers import make_paper, make_reader

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the module-scoped Chromium fixture


@pytest.fixture
def digest_html() -> str:
    reader = make_reader(3, "grace@example.org", ["diffusion models", "speech recognition"])
    papers = [make_paper(i, id=i + 1, upvotes=10 + i) for i in range(6)]
    papers[1] = make_paper(
        1, id=2, title="Supercalifragilisticexpialidociousunbreakabletitlewordthatgoesonandonforever" * 2
    )
    items = [
        DigestItem(p, "diffusion models", "The key sentence of the abstract.", strength=0.9 - 0.15 * n)
        for n, p in enumerate(papers)
    ]
    trending = [make_paper(20, id=30, upvotes=321)]
    settings = Settings(postal_address="1 Example Street, Sampletown")
    return render_digest(settings, reader, items, digest_date=date(2026, 11, 27), trending=trending).html


@pytest.mark.parametrize("width", [375, 800])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_digest_fits_the_screen_in_both_colour_schemes(
    browser, digest_html: str, width: int, scheme: str
) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page.set_content(digest_html, wait_until="domcontentloaded")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{overflow}px of horizontal scroll at {width}px ({scheme})"
        card_bg = page.evaluate("getComputedStyle(document.querySelector('.card > table')).backgroundColor")
        text_color = page.evaluate("getComputedStyle(document.querySelector('.card h2')).color")
        if scheme == "dark":
            assert card_bg == "rgb(22, 27, 34)" and text_color == "rgb(230, 237, 243)"
        else:
            assert card_bg == "rgb(255, 255, 255)"
        # Every paper link is on screen horizontally (nothing pushed off the right edge).
        right = page.evaluate(
            "Math.max(...[...document.querySelectorAll('.card a')].map(a => a.getBoundingClientRect().right))"
        )
        assert right <= width
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"digest-{width}px-{scheme}.png"), full_page=True)
    finally:
        page.close()
