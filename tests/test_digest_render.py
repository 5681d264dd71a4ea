"""The digest email: what it says, that it escapes, links are signed, and it stays small."""

from __future__ import annotations

import re
from datetime import date
from email.message import EmailMessage

import pytest

from newsletter.delivery.message import build_mail, new_message_id
from newsletter.digest.context import DigestItem, authors_line, strength_cue, subject_line
from newsletter.digest.render import COMPILE_COUNTS, GMAIL_CLIP_BYTES, render_confirmation, render_digest
from newsletter.settings import Settings
from newsletter.tokens import Purpose, read_token
from subscribers.models import Subscriber
from tests.support.papers import make_paper

DAY = date(2026, 11, 27)


@pytest.fixture
def settings() -> Settings:
    return Settings(postal_address="1 Example Street, 12345 Sampletown")


@pytest.fixture
def reader() -> Subscriber:
    return Subscriber(
        id=42,
        email="ada@example.org",
        email_key="ada@example.org",
        interests=["graph neural networks", "protein folding"],
        status="active",
    )


def _items(count: int, **fields: object) -> list[DigestItem]:
    return [
        DigestItem(make_paper(i, id=i + 1, **fields), "graph neural networks", f"Highlight sentence {i}.")
        for i in range(count)
    ]


def test_subject_is_led_by_the_best_pick() -> None:
    items = _items(5)
    items[0] = DigestItem(make_paper(0, id=1, title="Hyper-Connections"), "x", None)
    assert subject_line(items, DAY) == "Hyper-Connections (+4 more)"
    assert subject_line(items[:1], DAY) == "Hyper-Connections"
    assert subject_line([], DAY) == "Nothing new for you · Fri 27 Nov"


def test_the_email_opens_with_a_list_of_its_titles_linking_to_each_paper(
    settings: Settings, reader: Subscriber
) -> None:
    email = render_digest(settings, reader, _items(3), digest_date=DAY)
    toc = email.html.split("In this email", 1)[1].split("</ol>", 1)[0]
    assert re.findall(r'href="#(paper-\d+)"', toc) == ["paper-1", "paper-2", "paper-3"]
    for anchor in ("paper-1", "paper-2", "paper-3"):
        assert f'id="{anchor}"' in email.html
    assert "In this email\n 1. Hyper-Connections" in email.text
    single = render_digest(settings, reader, _items(1), digest_date=DAY)
    assert "In this email" not in single.html and "In this email" not in single.text


def test_each_pick_shows_how_strongly_it_matches_when_ranking_says(
    settings: Settings, reader: Subscriber
) -> None:
    papers = [make_paper(i, id=i + 1) for i in range(4)]
    items = [
        DigestItem(p, "graph neural networks", None, strength=s)
        for p, s in zip(papers, [0.9, 0.5, 0.1, None])
    ]
    email = render_digest(settings, reader, items, digest_date=DAY)
    assert re.findall(r"(Strong|Good|Loose) match", email.html) == ["Strong", "Good", "Loose"]
    assert "●●● Strong match" in email.text and "●○○ Loose match" in email.text
    assert strength_cue(None) is None and strength_cue(float("nan")) is None
    assert strength_cue(1.7) == strength_cue(1.0) and strength_cue(-1) == strength_cue(0.0)


def test_a_paper_without_a_page_links_to_its_entry_in_the_readers_archive(
    settings: Settings, reader: Subscriber
) -> None:
    paper = make_paper(0, id=9, url=None, arxiv_id=None, pdf_url=None)
    email = render_digest(settings, reader, [DigestItem(paper, "graphs", None)], digest_date=DAY)
    match = re.search(r'<h2[^>]*>.*?href="([^"]+)"', email.html, re.DOTALL)
    assert match and match.group(1).startswith(f"{settings.base_url}/archive/")
    assert match.group(1).endswith("#paper-9")
    token = match.group(1).split("/archive/", 1)[1].split("#", 1)[0]
    assert read_token(settings, Purpose.ARCHIVE, token).extra == {"d": "2026-11-27"}
    assert 'href=""' not in email.html
    assert "Abstract:" not in email.text and "PDF:" not in email.text
    assert f"Read: {match.group(1)}" in email.text


def test_feedback_controls_are_buttons_apart_from_the_paper_links(
    settings: Settings, reader: Subscriber
) -> None:
    html = render_digest(settings, reader, _items(1), digest_date=DAY).html
    votes = re.findall(r'<a class="vote" href="[^"]+" style="([^"]+)">(More|Less) like this</a>', html)
    assert [label for _, label in votes] == ["More", "Less"]
    style = votes[0][0]
    # 20 px line + 2 × 11 px padding + 2 × 1 px border = 44 px: a finger-sized target.
    assert "line-height: 20px" in style and "padding: 11px 14px" in style and "border: 1px solid" in style
    assert "white-space: nowrap" in style


def test_long_author_lists_are_shortened_with_et_al() -> None:
    assert authors_line(["A", "B"]) == "A, B"
    assert authors_line(["A", "B", "C", "D", "E"]) == "A, B, C et al."


def test_each_paper_shows_title_link_authors_categories_reason_and_links(
    settings: Settings, reader: Subscriber
) -> None:
    email = render_digest(settings, reader, _items(2, upvotes=12), digest_date=DAY)
    html, text = email.html, email.text
    assert 'href="https://arxiv.org/abs/2611.00000"' in html
    assert "Author 0-0, Author 0-1, Author 0-2 et al." in html
    assert "cs.LG, cs.CL" in html
    assert "Matches your interest “graph neural networks”: “Highlight sentence 0.”" in html
    # The quoted sentence stands for the abstract; the opening only shows without one.
    assert "We study residual connections" not in html
    plain = render_digest(settings, reader, [DigestItem(make_paper(0, id=1), "x", None)], digest_date=DAY)
    assert "We study residual connections" in plain.html and "We study residual connections" in plain.text
    assert 'href="https://arxiv.org/pdf/2611.00000"' in html
    assert 'href="https://huggingface.co/papers/2611.00000"' in html
    assert "More like this" in html and "Less like this" in html
    assert email.preheader in html
    # The plain-text part mirrors the HTML one.
    for needle in (
        "Author 0-0, Author 0-1, Author 0-2 et al.",
        "https://arxiv.org/pdf/2611.00001",
        "Highlight sentence 1.",
    ):
        assert needle in text


def test_feedback_preference_and_unsubscribe_links_carry_signed_tokens_not_ids(
    settings: Settings, reader: Subscriber
) -> None:
    email = render_digest(settings, reader, _items(1), digest_date=DAY)
    assert "ada@example.org/" not in email.html and "?email=" not in email.html
    found = {}
    for purpose in (Purpose.FEEDBACK, Purpose.PREFERENCES, Purpose.UNSUBSCRIBE):
        match = re.search(rf"{settings.base_url}/{purpose.value}/([A-Za-z0-9_.\-]+)", email.html)
        assert match, purpose
        found[purpose] = read_token(settings, purpose, match.group(1)).subscriber_id
    assert set(found.values()) == {42}
    assert re.search(r"/feedback/[^\"]+\?paper=1&amp;vote=up", email.html)
    assert re.search(r"/feedback/[^\"]+\?paper=1&amp;vote=down", email.html)


def test_titles_are_text_never_markup(settings: Settings, reader: Subscriber) -> None:
    items = [DigestItem(make_paper(0, id=1, title="<script>alert(1)</script> a & b"), "x", "<b>bold</b>")]
    email = render_digest(settings, reader, items, digest_date=DAY)
    assert "<script>alert(1)" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; a &amp; b" in email.html
    assert "&lt;b&gt;bold&lt;/b&gt;" in email.html
    assert "<script>alert(1)</script> a & b" in email.text


def test_trending_lists_popular_papers_that_were_not_picked(settings: Settings, reader: Subscriber) -> None:
    items = _items(2)
    popular = [make_paper(50, id=51, upvotes=99, title="Popular unpicked"), items[0].paper]
    email = render_digest(settings, reader, items, digest_date=DAY, trending=popular)
    section = email.html.split("Trending today", 1)[1]
    assert "Popular unpicked" in section and "▲ 99" in section
    assert items[0].paper.title not in section
    quiet = render_digest(settings, reader, items, digest_date=DAY, trending=[])
    assert "Trending today" not in quiet.html


def test_footer_says_why_the_reader_gets_it_and_shows_the_postal_address(
    settings: Settings, reader: Subscriber
) -> None:
    email = render_digest(settings, reader, _items(1), digest_date=DAY)
    for part in (email.html, email.text):
        assert "because ada@example.org subscribed" in part
        assert "1 Example Street, 12345 Sampletown" in part
        assert "Unsubscribe" in part and "Preferences" in part
    no_address = render_digest(Settings(), reader, _items(1), digest_date=DAY)
    assert "Sampletown" not in no_address.html


def test_twenty_papers_stay_under_gmails_clipping_limit(settings: Settings, reader: Subscriber) -> None:
    long_title = "A very long title about graph neural networks and protein folding " * 3
    items = [
        DigestItem(
            make_paper(i, id=i + 1, title=f"{long_title} {i}", upvotes=i), "graph neural networks", "x " * 100
        )
        for i in range(20)
    ]
    trending = [make_paper(100 + i, id=200 + i, upvotes=500 - i) for i in range(3)]
    email = render_digest(settings, reader, items, digest_date=DAY, trending=trending)
    assert email.html.count("More like this") == 20
    assert len(email.html.encode("utf-8")) < GMAIL_CLIP_BYTES


def test_mjml_is_compiled_once_per_process_however_many_emails(
    settings: Settings, reader: Subscriber
) -> None:
    render_digest(settings, reader, _items(1), digest_date=DAY)
    before = COMPILE_COUNTS["digest.mjml"]
    for _ in range(5):
        render_digest(settings, reader, _items(3), digest_date=DAY)
    assert COMPILE_COUNTS["digest.mjml"] == before == 1


def test_dark_mode_styles_and_inlined_css_are_in_the_html(settings: Settings, reader: Subscriber) -> None:
    html = render_digest(settings, reader, _items(1), digest_date=DAY).html
    assert "@media (prefers-color-scheme: dark)" in html
    assert re.search(r'<meta content="light dark" name="color-scheme">', html)
    # mj-style inline="inline" rules end up in style attributes (CSS inlining ran).
    assert re.search(r'<p class="meta" style="[^"]*color: ?#57606a', html)


def test_a_quiet_day_email_says_nothing_new(settings: Settings, reader: Subscriber) -> None:
    email = render_digest(settings, reader, [], digest_date=DAY)
    assert email.subject == "Nothing new for you · Fri 27 Nov"
    assert "Nothing new today" in email.html


def test_confirmation_email_links_to_a_signed_confirm_page(settings: Settings, reader: Subscriber) -> None:
    email = render_confirmation(settings, reader)
    match = re.search(rf'href="{settings.base_url}/confirm/([^"]+)"', email.html)
    assert match and read_token(settings, Purpose.CONFIRM, match.group(1)).subscriber_id == 42
    assert "/confirm/" in email.text


def test_message_has_list_headers_ids_and_text_plus_html(
    reader: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_FROM", "Paper Digest <digest@papers.example>")
    monkeypatch.setenv("NEWSLETTER_REPLY_TO", "help@papers.example")
    settings = Settings()
    email = render_digest(settings, reader, _items(2), digest_date=DAY)
    msg: EmailMessage = build_mail(
        settings,
        to=reader.email,
        subscriber_id=42,
        rendered=email,
        message_id=new_message_id(settings, "digest.test"),
    ).as_message()
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["From"] == "Paper Digest <digest@papers.example>"
    assert msg["Reply-To"] == "help@papers.example"
    assert msg["Message-ID"].endswith("@papers.example>")
    one_click, mailto = (part.strip(" <>") for part in msg["List-Unsubscribe"].split(","))
    assert one_click.startswith(f"{settings.base_url}/unsubscribe/")
    assert read_token(settings, Purpose.UNSUBSCRIBE, one_click.rsplit("/", 1)[1]).subscriber_id == 42
    assert mailto.startswith("mailto:unsubscribe@papers.example?subject=unsubscribe")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "Paper digest <paper-digest.localhost>"
