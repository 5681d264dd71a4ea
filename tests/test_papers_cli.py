"""`newsletter papers ingest|list|show` as a person or a script uses them."""

from __future__ import annotations

import json

import pytest

from tests.support.recorded_http import arxiv_entries, arxiv_pages, recorded_server, recording
from tests.support.requirements import shared

ROW_KEYS = [
    "id",
    "arxiv_id",
    "title",
    "abstract",
    "authors",
    "categories",
    "published",
    "url",
    "upvotes",
    "first_seen",
]


def test_list_json_has_stable_keys_newest_first(cli, database_url: str) -> None:
    cli("papers", "import", str(shared("eval/arxiv-2007/arxiv-metadata-sample.jsonl")))
    result = cli("papers", "list", "--format", "json", "--limit", "5")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert len(rows) == 5
    assert all(list(row) == ROW_KEYS for row in rows)
    assert rows[0]["categories"] and isinstance(rows[0]["authors"], list)
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert json.loads(cli("papers", "list", "--format", "json", "--since", "2999-01-01").stdout) == []


def test_show_finds_a_paper_by_number_or_arxiv_id_and_shows_the_raw_text(cli, database_url: str) -> None:
    cli("papers", "import", str(shared("eval/arxiv-2007/arxiv-metadata-sample.jsonl")))
    by_arxiv = json.loads(cli("papers", "show", "0704.0001v2", "--format", "json").stdout)
    assert by_arxiv["title_raw"].startswith(
        "Calculation of prompt diphoton production cross sections at Tevatron and\n"
    )
    assert by_arxiv["links"]["doi"] == "https://doi.org/10.1103/PhysRevD.76.013009"
    by_number = json.loads(cli("papers", "show", str(by_arxiv["id"]), "--format", "json").stdout)
    assert by_number == by_arxiv
    missing = cli("papers", "show", "9999.99999")
    assert missing.exit_code == 2 and "no paper '9999.99999'" in missing.output


def test_ingest_prints_a_summary_per_source_and_exits_1_when_one_failed(
    cli, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recorded_server() as server:
        server.route(
            "/api/query",
            arxiv_pages(arxiv_entries("arxiv_api/ikevinxie_ai-weekly-radar/arxiv_feed.xml")),
        )
        monkeypatch.setenv("NEWSLETTER_ARXIV_API_URL", server.url("/api/query"))
        monkeypatch.setenv("NEWSLETTER_HF_API_URL", server.url("/missing"))
        monkeypatch.setenv("NEWSLETTER_ARXIV_DELAY_SECONDS", "0")
        monkeypatch.setenv("NEWSLETTER_HTTP_BACKOFF_SECONDS", "0")
        result = cli(
            "papers",
            "ingest",
            "--source",
            "arxiv",
            "--source",
            "hf-daily",
            "--categories",
            "cs.AI,cs.LG",
            "--since",
            "2026-07-09",
        )
        assert (
            server.seen("/api/query")[0]
            .query["search_query"]
            .startswith("(cat:cs.AI OR cat:cs.LG) AND submittedDate:[202607090000 TO ")
        )
        assert [r.query for r in server.seen("/missing")] == [{"date": "2026-07-09"}]
    assert result.exit_code == 1
    assert "arxiv: fetched 50, new 50, updated 0, duplicates 0, skipped 0" in result.output
    assert "hf-daily: FAILED: " in result.output and "answered HTTP 404" in result.output
    assert "Ingested: fetched 50, new 50" in result.output
    assert len(json.loads(cli("papers", "list", "--format", "json", "--limit", "100").stdout)) == 50


def test_ingest_json_reports_each_source_for_scripts(
    cli, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recorded_server() as server:
        server.route(
            "/rss/cs.LG+cs.AI+cs.CL+stat.ML",
            recording("arxiv_rss/msudars_laya-reader/arxiv_rss.xml"),
        )
        monkeypatch.setenv("NEWSLETTER_ARXIV_RSS_URL", server.url("/rss"))
        result = cli(
            "papers",
            "ingest",
            "--source",
            "arxiv-listing",
            "--categories",
            "cs.LG,cs.AI,cs.CL,stat.ML",
            "--cross",
            "--format",
            "json",
        )
    assert result.exit_code == 0
    [report] = json.loads(result.stdout)
    assert report["source"] == "arxiv-listing"
    assert (report["fetched"], report["new"], report["skipped"]) == (4, 3, 1)
    assert report["skipped_reasons"] == {"replacement of an older paper": 1}


def test_ingest_rejects_an_unknown_source_and_a_bad_date(cli, database_url: str) -> None:
    unknown = cli("papers", "ingest", "--source", "twitter")
    assert unknown.exit_code == 2 and "unknown source 'twitter'" in unknown.output
    bad = cli("papers", "ingest", "--source", "arxiv", "--date", "yesterday")
    assert bad.exit_code == 2 and "--date 'yesterday' is not a date" in bad.output
