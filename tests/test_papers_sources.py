"""Each source against a real HTTP server on 127.0.0.1 serving recorded responses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from itertools import pairwise

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from newsletter.papers.ingest import ingest
from newsletter.papers.models import Paper
from newsletter.settings import Settings
from tests.support.recorded_http import (
    ATOM_TYPE,
    RSS_TYPE,
    RecordedServer,
    Reply,
    arxiv_entries,
    arxiv_feed,
    arxiv_pages,
    recorded_server,
    recording,
)

ARXIV_50 = "arxiv_api/ikevinxie_ai-weekly-radar/arxiv_feed.xml"
HF_25 = "hf_daily_papers/ikevinxie_ai-weekly-radar/huggingface_papers.json"
LISTING = "arxiv_rss/msudars_laya-reader/arxiv_rss.xml"


@pytest.fixture
def server() -> Iterator[RecordedServer]:
    with recorded_server() as s:
        yield s


@pytest.fixture
def fast(settings: Settings, server: RecordedServer) -> Settings:
    """Settings pointing every source at the local server, with no politeness delays."""
    return settings.model_copy(
        update={
            "arxiv_api_url": server.url("/api/query"),
            "arxiv_rss_url": server.url("/rss"),
            "hf_api_url": server.url("/api/daily_papers"),
            "arxiv_delay_seconds": 0.0,
            "http_backoff_seconds": 0.01,
            "http_retries": 2,
            "http_timeout": 2.0,
        }
    )


def count(engine: Engine) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(Paper)).one()


def paper(engine: Engine, arxiv_id: str) -> Paper:
    with Session(engine) as s:
        return s.exec(select(Paper).where(Paper.arxiv_id == arxiv_id)).one()


def test_arxiv_api_pages_through_results_until_the_opensearch_total(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    server.route("/api/query", arxiv_pages(arxiv_entries(ARXIV_50)))
    source = ingest(engine, fast, ["arxiv"], categories=["cs.AI", "cs.LG"])
    stats = source.sources[0]
    assert (stats.fetched, stats.new, stats.error) == (50, 50, None)
    assert count(engine) == 50
    requests = server.seen("/api/query")
    assert [r.query["start"] for r in requests] == ["0"]  # total 50 < one page of 100
    assert "cat:cs.AI OR cat:cs.LG" in requests[0].query["search_query"]
    assert "submittedDate:[" in requests[0].query["search_query"]

    first = paper(engine, "2607.09662")
    assert first.arxiv_version == 1
    assert first.primary_category and first.categories
    assert first.pdf_url == "https://arxiv.org/pdf/2607.09662v1"
    assert first.url == "https://arxiv.org/abs/2607.09662"
    assert first.authors and first.published_at is not None


def test_arxiv_api_asks_for_each_page_and_waits_between_calls(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    server.route("/api/query", arxiv_pages(arxiv_entries(ARXIV_50)))
    from newsletter.papers.http import PoliteClient
    from newsletter.papers.sources.arxiv_api import ArxivApiSource

    with closing(PoliteClient(timeout=2, retries=0, delay_seconds=0.2)) as client:
        source = ArxivApiSource(client, fast.arxiv_api_url, ["cs.LG"], page_size=20)
        records = list(source.fetch())
    assert len(records) == 50
    requests = server.seen("/api/query")
    assert [(r.query["start"], r.query["max_results"]) for r in requests] == [
        ("0", "20"),
        ("20", "20"),
        ("40", "20"),
    ]
    gaps = [b.at - a.at for a, b in pairwise(requests)]
    assert min(gaps) >= 0.19


def test_arxiv_api_retries_after_a_503_and_then_succeeds(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    ok = Reply(200, arxiv_feed(arxiv_entries(ARXIV_50)[:3], total=3, start=0), ATOM_TYPE)
    server.route("/api/query", [Reply(503, b"Service Unavailable"), ok])
    report = ingest(engine, fast, ["arxiv"])
    assert report.sources[0].error is None
    assert report.sources[0].new == 3
    assert len(server.seen("/api/query")) == 2


def test_a_timeout_is_retried_like_a_503(fast: Settings, server: RecordedServer) -> None:
    from newsletter.papers.http import PoliteClient

    server.route("/slow", [Reply(200, b"late", delay=1.0), Reply(200, b"on time")])
    with closing(PoliteClient(timeout=0.3, retries=1, backoff_seconds=0.01)) as client:
        assert client.get(server.url("/slow")).text == "on time"


def test_a_source_that_stays_down_fails_alone_while_the_others_ingest(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    server.route("/api/query", Reply(503, b"Service Unavailable"))
    server.route("/api/daily_papers", recording(HF_25))
    report = ingest(engine, fast, ["arxiv", "hf-daily"])
    arxiv, hf = report.sources
    assert arxiv.error and "503" in arxiv.error and "3 attempts" in arxiv.error
    assert len(server.seen("/api/query")) == 3  # first try + http_retries
    assert hf.error is None and hf.new == 25
    assert count(engine) == 25


def test_the_arxiv_error_feed_fails_the_source_with_arxivs_explanation(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    server.route("/api/query", recording("arxiv_api/lukasschwab_arxiv.py/id_abc_s0_m100_b79c8dcf6bc3.json"))
    report = ingest(engine, fast, ["arxiv"])
    assert report.sources[0].error == "arXiv API error: incorrect id format for abc"
    assert len(server.seen("/api/query")) == 1  # a 400 is our mistake: never retried
    assert count(engine) == 0


def test_an_empty_day_is_not_an_error(engine: Engine, fast: Settings, server: RecordedServer) -> None:
    server.route(
        "/api/query",
        recording("arxiv_api/lukasschwab_arxiv.py/id_0000.0000_s0_m100_8b51d9633a68.json"),
    )
    report = ingest(engine, fast, ["arxiv"])
    stats = report.sources[0]
    assert (stats.error, stats.fetched, stats.new) == (None, 0, 0)
    assert stats.note and "no papers" in stats.note


def test_a_newer_arxiv_version_updates_the_row_and_keeps_first_seen(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    entry = arxiv_entries(ARXIV_50)[0]
    server.route("/api/query", Reply(200, arxiv_feed([entry], total=1, start=0), ATOM_TYPE))
    ingest(engine, fast, ["arxiv"])
    before = paper(engine, "2607.09662")

    revised = entry.replace("2607.09662v1", "2607.09662v2").replace(
        "<title>PHINN-EEG:", "<title>PHINN-EEG (revised):"
    )
    server.route("/api/query", Reply(200, arxiv_feed([revised], total=1, start=0), ATOM_TYPE))
    report = ingest(engine, fast, ["arxiv"])
    assert (report.sources[0].new, report.sources[0].updated) == (0, 1)
    after = paper(engine, "2607.09662")
    assert after.id == before.id and count(engine) == 1
    assert after.arxiv_version == 2
    assert after.title.startswith("PHINN-EEG (revised):")
    assert after.pdf_url == "https://arxiv.org/pdf/2607.09662v2"
    assert after.first_seen_at == before.first_seen_at

    older = ingest(engine, fast, ["arxiv"])  # the same v2 again: nothing changes
    assert (older.sources[0].updated, older.sources[0].duplicates) == (0, 1)


def test_rerunning_an_ingest_adds_and_changes_nothing(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    server.route("/api/query", arxiv_pages(arxiv_entries(ARXIV_50)))
    server.route("/api/daily_papers", recording(HF_25))
    ingest(engine, fast, ["arxiv", "hf-daily"])
    with Session(engine) as s:
        modified = {p.id: p.modified_at for p in s.exec(select(Paper))}
    again = ingest(engine, fast, ["arxiv", "hf-daily"])
    assert [(s.new, s.updated) for s in again.sources] == [(0, 0), (0, 0)]
    assert [s.duplicates for s in again.sources] == [50, 25]
    with Session(engine) as s:
        assert {p.id: p.modified_at for p in s.exec(select(Paper))} == modified


def test_the_same_paper_from_arxiv_and_hugging_face_is_one_merged_paper(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    # 2607.09424 and 2607.09657 are in both real recordings.
    server.route("/api/query", arxiv_pages(arxiv_entries(ARXIV_50)))
    server.route("/api/daily_papers", recording(HF_25))
    report = ingest(engine, fast, ["arxiv", "hf-daily"])
    assert report.sources[1].updated == 2 and report.sources[1].new == 23
    assert count(engine) == 50 + 25 - 2
    merged = paper(engine, "2607.09424")
    assert merged.source == "arxiv"
    assert merged.upvotes is not None  # from Hugging Face
    assert merged.categories and merged.primary_category  # from arXiv
    assert {"abs", "pdf", "hf"} <= set(merged.links)


def test_hugging_face_daily_papers_keep_upvotes_and_ask_for_the_date(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    from datetime import date

    server.route(
        "/api/daily_papers",
        recording("hf_daily_papers/lucas-m-lopes_sotawhat/hf_daily_papers.json"),
    )
    report = ingest(engine, fast, ["hf-daily"], day=date(2026, 6, 12))
    assert report.sources[0].new == 30
    assert server.seen("/api/daily_papers")[0].query == {"date": "2026-06-12"}
    with Session(engine) as s:
        upvotes = sorted(p.upvotes for p in s.exec(select(Paper)))
        top = s.exec(select(Paper).order_by(Paper.upvotes.desc())).first()  # type: ignore[union-attr]
    assert upvotes[-1] == 118 and upvotes[0] == 0
    assert top.links["hf"] == f"https://huggingface.co/papers/{top.arxiv_id}"
    assert top.authors and top.abstract


def test_the_listings_feed_takes_new_skips_replacements_and_cross_lists_unless_asked(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    server.route("/rss/cs.LG+cs.AI+cs.CL+stat.ML", recording(LISTING))
    categories = ["cs.LG", "cs.AI", "cs.CL", "stat.ML"]
    report = ingest(engine, fast, ["arxiv-listing"], categories=categories)
    stats = report.sources[0]
    assert (stats.fetched, stats.new) == (4, 2)
    assert stats.skipped == {
        "replacement of an older paper": 1,
        "cross-list (use --cross to include)": 1,
    }
    drift = paper(engine, "2609.26811")
    assert drift.abstract.startswith("Local learning trains")  # "arXiv:… Announce Type" removed
    assert drift.authors == ["Fabien Polly"]
    two = paper(engine, "2609.26820")
    assert two.authors == ["Naser Mansour", "Sidahmed Benabderrahmane", "Ameer Rahwan"]
    assert two.categories == ["cs.LG", "cs.AI"] and two.primary_category == "cs.LG"

    crossed = ingest(engine, fast, ["arxiv-listing"], categories=categories, include_cross=True)
    assert crossed.sources[0].new == 1 and crossed.sources[0].duplicates == 2
    assert paper(engine, "2205.06398").arxiv_version == 2


EMPTY_LISTING = b"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">
  <channel>
    <title>cs.LG updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/cs.LG</link>
    <description>cs.LG updates on the arXiv.org e-print archive.</description>
    <atom:link href="http://rss.arxiv.org/rss/cs.LG" rel="self" type="application/rss+xml"/>
    <docs>http://www.rssboard.org/rss-specification</docs>
    <language>en-us</language>
    <lastBuildDate>Sun, 27 Sep 2026 00:30:00 +0000</lastBuildDate>
    <managingEditor>rss-help@arxiv.org</managingEditor>
    <pubDate>Sun, 27 Sep 2026 00:00:00 -0400</pubDate>
    <skipDays>
      <day>Sunday</day>
      <day>Saturday</day>
    </skipDays>
  </channel>
</rss>
"""


def test_a_weekend_listing_without_items_says_so(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    server.route("/rss/cs.LG", Reply(200, EMPTY_LISTING, RSS_TYPE))
    stats = ingest(engine, fast, ["arxiv-listing"], categories=["cs.LG"]).sources[0]
    assert (stats.error, stats.fetched) == (None, 0)
    assert "weekend" in (stats.note or "")


JOURNAL_FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>Journal of Examples: latest articles</title>
    <link>https://journal.example/</link>
    <description>Latest articles</description>
    <item>
      <title>Sparse &lt;i&gt;Attention&lt;/i&gt; for Long   Documents</title>
      <link>https://journal.example/articles/123</link>
      <guid>https://journal.example/articles/123</guid>
      <description>&lt;p&gt;We study &lt;b&gt;sparse&lt;/b&gt; attention &amp;amp; memory.&lt;/p&gt;</description>
      <dc:creator>Ada Lovelace, Alan Turing</dc:creator>
      <pubDate>Tue, 22 Sep 2026 09:00:00 +0000</pubDate>
    </item>
    <item>
      <link>https://journal.example/articles/124</link>
      <description>An item without a title.</description>
    </item>
    <item>
      <title>A preprint mirrored from arXiv</title>
      <link>https://arxiv.org/abs/2609.26811v1</link>
      <description>Mirrored.</description>
    </item>
  </channel>
</rss>
"""


def test_any_rss_feed_is_cleaned_and_a_bad_entry_is_skipped_with_its_reason(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    url = server.route("/journal.xml", Reply(200, JOURNAL_FEED, RSS_TYPE))
    stats = ingest(engine, fast, ["rss"], urls=[url]).sources[0]
    assert (stats.fetched, stats.new) == (3, 2)
    assert stats.skipped == {"entry without a title": 1}
    with Session(engine) as s:
        article = s.exec(select(Paper).where(Paper.arxiv_id.is_(None))).one()  # type: ignore[union-attr]
    assert article.title == "Sparse Attention for Long Documents"
    assert article.abstract == "We study sparse attention & memory."
    assert article.authors == ["Ada Lovelace", "Alan Turing"]
    assert article.links["feed"] == url
    assert paper(engine, "2609.26811").url == "https://arxiv.org/abs/2609.26811v1"

    again = ingest(engine, fast, ["rss"], urls=[url]).sources[0]
    assert (again.new, again.duplicates) == (0, 2)


def test_a_feed_url_that_is_not_a_feed_fails_that_source(
    engine: Engine, fast: Settings, server: RecordedServer
) -> None:
    url = server.route("/nothing", Reply(404, b"gone"))
    stats = ingest(engine, fast, ["rss"], urls=[url]).sources[0]
    assert stats.error == f"{url} answered HTTP 404"
