"""Every email we send is readable: each text's colour against the background it sits on is at
least 4.5:1 (WCAG AA) in light and in dark mode, and no link is empty.

The colours come from the compiled email itself: Chromium applies the inlined styles and the
dark-mode media query exactly as a mail client with a modern engine would, and the test reads
each text element's computed colour and the first opaque background behind it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from newsletter.digest.context import DigestItem
from newsletter.digest.render import RenderedEmail, render_confirmation, render_digest
from newsletter.settings import Settings
from tests.support.browser import browser
from tests.support.papers import make_paper, make_reader

pytestmark = pytest.mark.browser
__all__ = ["browser"]

DAY = date(2026, 11, 27)
AA = 4.5

#: For each visible element with its own text: its colour and the first opaque background
#: behind it (the canvas colour of the scheme when nothing is painted).
_COLOURS = """
(canvas) => {
  const rgb = (value) => {
    const m = value.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) return c;
    }
    return canvas;
  };
  const shown = (el) => {
    if (!el.getClientRects().length) return false;
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.display === "none" || s.visibility === "hidden" || Number(s.opacity) === 0) return false;
      if (e !== el && (s.maxHeight === "0px" || s.maxWidth === "0px") && s.overflow === "hidden") return false;
    }
    return true;
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
    if (!own || !shown(el)) continue;
    out.push({text: own.slice(0, 40), tag: el.tagName, fg: rgb(getComputedStyle(el).color), bg: behind(el)});
  }
  return out;
}
"""


def _luminance(rgb: list[float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    """The WCAG 2 contrast ratio of two sRGB colours (1 to 21)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_ratio_matches_the_wcag_reference_values() -> None:
    assert contrast([0, 0, 0], [255, 255, 255]) == pytest.approx(21.0)
    assert contrast([118, 118, 118], [255, 255, 255]) == pytest.approx(4.54, abs=0.01)  # #767676
    # The pair the old confirmation button had in dark mode (#58a6ff on #1f6feb): not readable.
    assert contrast([0x58, 0xA6, 0xFF], [0x1F, 0x6F, 0xEB]) < 2


@dataclass(frozen=True)
class Email:
    name: str
    rendered: RenderedEmail


def _emails() -> list[Email]:
    settings = Settings(postal_address="1 Example Street, Sampletown")
    reader = make_reader(7, "ada@example.org", ["diffusion models", "author: Jonathan Ho"], send_empty=True)
    papers = [make_paper(i, id=i + 1, upvotes=5 + i) for i in range(5)]
    papers[3] = make_paper(3, id=4, url=None, arxiv_id=None, pdf_url=None, upvotes=None)  # no page
    items = [
        DigestItem(papers[0], "Jonathan Ho", None, reason="author", strength=0.9),
        DigestItem(papers[1], "diffusion models", "A sentence that matched.", strength=0.55),
        DigestItem(papers[2], None, None, reason="liked", strength=0.1),
        DigestItem(papers[3], "diffusion models", None, strength=None),
        DigestItem(papers[4], "diffusion models", "Another sentence.", strength=0.7),
    ]
    trending = [make_paper(10, id=20, upvotes=99), make_paper(11, id=21, upvotes=50, url=None, arxiv_id=None)]
    return [
        Email("digest", render_digest(settings, reader, items, digest_date=DAY, trending=trending)),
        Email("one-paper digest", render_digest(settings, reader, items[:1], digest_date=DAY)),
        Email("quiet-day digest", render_digest(settings, reader, [], digest_date=DAY)),
        Email("confirmation", render_confirmation(settings, reader.model_copy(update={"status": "pending"}))),
    ]


EMAILS = _emails()


@pytest.mark.parametrize("email", EMAILS, ids=[e.name for e in EMAILS])
def test_no_email_has_an_empty_link_and_its_text_part_has_no_empty_line_label(email: Email) -> None:
    hrefs = re.findall(r'href="([^"]*)"', email.rendered.html)
    assert hrefs, "an email without links?"
    assert [h for h in hrefs if not h.strip() or h.strip() == "#"] == []
    assert not re.search(r"^\s*[A-Z][\w ]+:\s*$", email.rendered.text, re.MULTILINE), email.rendered.text


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("email", EMAILS, ids=[e.name for e in EMAILS])
def test_every_text_colour_pair_is_at_least_4_5_to_1(browser: Any, email: Email, scheme: str) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 800}, color_scheme=scheme)
    try:
        page.set_content(email.rendered.html, wait_until="domcontentloaded")
        canvas = [255, 255, 255, 1] if scheme == "light" else [18, 18, 18, 1]
        pairs = page.evaluate(_COLOURS, canvas)
    finally:
        page.close()
    assert len(pairs) > 5, "the email shows hardly any text?"
    weak = [
        f"{p['tag']} {p['text']!r}: {p['fg'][:3]} on {p['bg'][:3]} = {contrast(p['fg'], p['bg']):.2f}"
        for p in pairs
        if contrast(p["fg"], p["bg"]) < AA
    ]
    assert weak == [], "\n".join(weak)
