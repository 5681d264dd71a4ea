"""`newsletter recommend`, `newsletter papers embed` and `newsletter subscribers vote`.

The ranking modules (and torch) are imported inside the commands, so the rest of the CLI
never pays for them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import typer

from newsletter.cli.common import FormatOption, console, database, progress
from newsletter.cli.output import Format, emit
from newsletter.errors import UserError
from newsletter.settings import get_settings

COLUMNS = ["rank", "score", "title", "arxiv_id", "matched_interest"]
EXPLAIN_COLUMNS = [*COLUMNS, "matched_terms", "highlight"]


def _since(value: str | None, all_papers: bool, window_days: int) -> datetime | None:
    if value is not None and all_papers:
        raise UserError("--since and --all contradict each other; give one of them")
    if all_papers:
        return None
    if value is None:
        return datetime.now(UTC) - timedelta(days=window_days)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--since {value!r} is not a date; use YYYY-MM-DD") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _rows(session, picks) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    from newsletter.papers.models import Paper

    rows = []
    for rank, pick in enumerate(picks, start=1):
        paper = session.get(Paper, pick.paper_id)
        url = paper.url or (f"https://arxiv.org/abs/{paper.arxiv_id}" if paper.arxiv_id else None)
        rows.append(
            {
                "rank": rank,
                "paper_id": pick.paper_id,
                "title": paper.title,
                "score": pick.score,
                "reason": pick.reason,
                "matched_interest": pick.matched_interest,
                "matched_terms": list(pick.matched_terms),
                "highlight": pick.highlight,
                "arxiv_id": paper.arxiv_id,
                "url": url,
                "authors": list(paper.authors),
                "published_at": paper.published_at.isoformat() if paper.published_at else None,
            }
        )
    return rows


def recommend(
    interests: Annotated[
        str | None,
        typer.Option(
            "--interests",
            "-i",
            help='Comma-separated phrases: "graph neural networks, LoRA, author: Yann LeCun, '
            '-medical imaging".',
        ),
    ] = None,
    subscriber: Annotated[
        str | None,
        typer.Option("--subscriber", "-s", help="Show what this address's next email would hold."),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many papers (--interests).")] = 10,
    since: Annotated[
        str | None,
        typer.Option(help="Only papers first seen after this date (YYYY-MM-DD)."),
    ] = None,
    all_papers: Annotated[bool, typer.Option("--all", help="Rank every stored paper, however old.")] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Table: add matched terms and the highlight.")
    ] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Rank stored papers for interests, or preview a subscriber's next digest.

    Each paper is scored against every interest phrase separately (meaning and exact terms);
    papers below NEWSLETTER_MIN_SCORE are left out, so the list may be short or empty.
    Examples:

        newsletter recommend -i "diffusion models, LoRA" --all --explain

        newsletter recommend --subscriber ada@example.org --format json
    """
    from newsletter.ranking import service

    if (interests is None) == (subscriber is None):
        raise UserError("give exactly one of --interests or --subscriber")
    settings = get_settings()
    with database(settings) as session:
        if subscriber is not None:
            if since is not None or all_papers:
                raise UserError(
                    "--since/--all apply to --interests; a subscriber's candidates are the "
                    "papers since their last digest"
                )
            from jobs.compose import recommend
            from subscribers.service import require

            person = require(session, subscriber)
            picks = recommend(session, settings, [person])[person.id or 0]
        else:
            window = _since(since, all_papers, settings.candidate_window_days)
            picks = service.recommend_for_interests(
                session, settings, [interests or ""], limit=limit, since=window
            )
        rows = _rows(session, picks)
    if not rows and fmt == Format.TABLE:
        console.print(
            "No paper scores above NEWSLETTER_MIN_SCORE for these interests "
            "(try --all, or `newsletter papers ingest`)."
        )
        return
    emit(rows, fmt, EXPLAIN_COLUMNS if explain else COLUMNS, title=f"{len(rows)} papers")


def embed() -> None:
    """Embed every stored paper that has no vector for the configured model yet.

    Each paper is embedded once per model (title and abstract); a second run embeds 0.
    """
    from newsletter.ranking import service
    from newsletter.ranking.store import missing_paper_ids

    settings = get_settings()
    with database(settings) as session, progress("embedding papers") as report:
        report.set_total(len(missing_paper_ids(session, settings)))
        count = service.embed_missing(session, settings, report.advance)
    console.print(f"Embedded {count} papers.")


class VoteChoice(StrEnum):
    """What `subscribers vote` records."""

    UP = "up"
    DOWN = "down"
    CLEAR = "clear"


def vote(
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
    paper_id: Annotated[int, typer.Argument(help="Paper id (see `newsletter papers list`).")],
    choice: Annotated[VoteChoice, typer.Argument(help="up = more like this, down = less, clear = undo.")],
) -> None:
    """Record "more like this" / "less like this" for a subscriber (as the email links do)."""
    from subscribers.feedback import VOTES, record_vote
    from subscribers.service import require

    with database() as session:
        person = require(session, email)
        assert person.id is not None
        record_vote(session, person.id, paper_id, VOTES[choice.value])
    console.print(f"Recorded {choice.value} on paper {paper_id} for {person.email}.")
