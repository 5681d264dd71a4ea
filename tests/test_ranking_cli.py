"""`newsletter recommend`, `newsletter papers embed` and `newsletter subscribers vote`."""

from __future__ import annotations

import json

import pytest

from tests.support.requirements import shared

pytestmark = pytest.mark.slow


@pytest.fixture
def imported(cli, database_url: str) -> str:  # type: ignore[no-untyped-def]
    """The papers page imported through the CLI; returns the embed command's message."""
    assert cli("papers", "import", str(shared("data/papers-page.txt"))).exit_code == 0
    result = cli("papers", "embed")
    assert result.exit_code == 0, result.output
    return result.stderr


def test_papers_embed_reports_counts_and_a_second_run_embeds_nothing(cli, imported: str) -> None:  # type: ignore[no-untyped-def]
    assert "Embedded 116 papers." in imported
    # Not a terminal: progress is a line a log can show, and it ends at the whole count.
    assert "embedding papers: 116/116 (100%)" in imported
    again = cli("papers", "embed")
    assert again.exit_code == 0 and "Embedded 0 papers." in again.stderr


def test_recommend_json_has_stable_keys_and_explanations(cli, imported: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "recommend", "--interests", "graph neural networks, LoRA", "--limit", "4", "--all", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert 1 <= len(rows) <= 4
    for row in rows:
        assert {
            "title",
            "score",
            "matched_interest",
            "highlight",
            "arxiv_id",
            "url",
            "matched_terms",
            "reason",
            "paper_id",
        } <= set(row)
        assert row["matched_interest"] in {"graph neural networks", "LoRA"}
        assert row["highlight"]


def test_recommend_table_with_explain_shows_the_highlight(cli, imported: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("recommend", "-i", "LoRA", "--limit", "2", "--explain")
    assert result.exit_code == 0, result.output
    assert "highlight" in result.stdout and "LoRA" in result.stdout


def test_recommend_for_a_subscriber_previews_their_next_email(cli, imported: str) -> None:  # type: ignore[no-untyped-def]
    assert (
        cli(
            "subscribers",
            "add",
            "ada@example.org",
            "--interests",
            "network pruning",
            "--max-papers",
            "2",
            "--confirmed",
        ).exit_code
        == 0
    )
    result = cli("recommend", "--subscriber", "ada@example.org", "--format", "json")
    rows = json.loads(result.stdout)
    assert len(rows) == 2 and all(r["matched_interest"] == "network pruning" for r in rows)
    vote = cli("subscribers", "vote", "ada@example.org", str(rows[0]["paper_id"]), "up")
    assert vote.exit_code == 0 and "Recorded up" in vote.stderr
    after = json.loads(cli("recommend", "--subscriber", "ada@example.org", "-f", "json").stdout)
    assert rows[0]["paper_id"] not in {r["paper_id"] for r in after}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interests", " , ; "], "no interests given"),
        (["--interests", ", ".join(f"topic {i}" for i in range(500))], "characters long"),
        (["--interests", ", ".join(f"t{i}" for i in range(25))], "at most 20"),
        (["--interests", "x" * 10_000], "characters long"),
        (["--interests", "-medical imaging"], "only exclusions"),
        ([], "exactly one of --interests or --subscriber"),
        (["--interests", "LoRA", "--since", "yesterday"], "not a date"),
        (["--interests", "LoRA", "--since", "2024-01-01", "--all"], "contradict"),
        (["--subscriber", "nobody@example.org"], "no subscriber"),
    ],
)
def test_recommend_rejects_bad_input_in_one_line(
    cli, database_url: str, args: list[str], message: str
) -> None:  # type: ignore[no-untyped-def]
    result = cli("recommend", *args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_model_that_cannot_load_is_one_line_naming_the_setting(
    cli, imported: str, monkeypatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NEWSLETTER_EMBEDDING_MODEL", str(tmp_path / "missing-model"))
    result = cli("papers", "embed")
    assert result.exit_code == 2
    assert "NEWSLETTER_EMBEDDING_MODEL" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_vote_rejects_unknown_papers(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("subscribers", "add", "ada@example.org", "-i", "LoRA", "--confirmed").exit_code == 0
    result = cli("subscribers", "vote", "ada@example.org", "999", "down")
    assert result.exit_code == 2 and "no paper with id 999" in result.stderr
