"""`newsletter papers …`: ingest from sources, import files, list and show papers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.common import FormatOption, console, database
from newsletter.cli.output import Format, emit, emit_one
from newsletter.errors import UserError
from newsletter.papers.records import Progress, SourceStats
from newsletter.papers.sources import SOURCES
from newsletter.settings import get_settings

app = typer.Typer(
    help="Ingest papers from arXiv, Hugging Face and feeds; import files; list and show papers.",
    no_args_is_help=True,
)

LIST_COLUMNS = ["id", "arxiv_id", "title", "published", "upvotes", "first_seen"]


class FileFormat(StrEnum):
    """Input formats of `papers import`."""

    AUTO = "auto"
    PAPERS_PAGE = "papers-page"
    JSONL = "jsonl"
    CSV = "csv"
    ARXIV_SNAPSHOT = "arxiv-snapshot"


def _say(text: str) -> None:
    """A message line for people: never wrapped (logs stay greppable), no markup parsing."""
    console.print(text, soft_wrap=True, markup=False)


def _parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


@contextmanager
def _progress(label: str) -> Iterator[Progress]:
    """A rich progress bar on a terminal; on a pipe or log, a plain line every few seconds."""
    if console.is_terminal:
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        with Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=None, count="")

            def show(stats: SourceStats, fraction: float | None) -> None:
                bar.update(
                    task,
                    description=f"{label} {stats.name}",
                    count=f"{stats.fetched} read",
                    total=1.0 if fraction is not None else None,
                    completed=fraction or 0,
                )

            yield show
        return
    last = [0.0]

    def log(stats: SourceStats, fraction: float | None) -> None:
        now = time.monotonic()
        if now - last[0] >= 2.0:
            last[0] = now
            done = f" ({fraction:.0%})" if fraction is not None else ""
            _say(f"{label} {stats.name}: {stats.fetched} read{done}")

    yield log


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A papers file (see --format).")],
    file_format: Annotated[
        FileFormat,
        typer.Option(
            "--format",
            "-f",
            help="auto detects from the content and says which it chose. papers-page: header "
            "lines then title/abstract line pairs; jsonl/csv: title, abstract required, id, "
            "authors, categories, date, url, upvotes optional; arxiv-snapshot: Cornell's "
            "arXiv metadata JSON lines.",
        ),
    ] = FileFormat.AUTO,
) -> None:
    """Import papers from a file in one transaction: all of it, or nothing on error or Ctrl-C.

    Re-importing a file adds nothing: papers are matched by arXiv id, else by title.
    Unusable rows are skipped and listed with their line numbers.

    \b
    Examples:
      newsletter papers import ../shared/data/papers-page.txt
      newsletter papers import arxiv-metadata-oai-snapshot.json --format arxiv-snapshot
    """
    from newsletter.papers.importers import detect_format, import_file

    chosen = detect_format(path) if file_format == FileFormat.AUTO else file_format.value
    how = "detected" if file_format == FileFormat.AUTO else "given"
    _say(f"Reading {path} as {chosen} ({how}).")
    with database() as session, _progress("importing") as progress:
        result = import_file(session, path, chosen, progress=progress)
    for example in result.stats.examples:
        _say(f"  skipped {example}")
    _say(f"Imported {path.name}: {result.stats.summary()}.")


@app.command("ingest")
def ingest_(
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help=f"{SOURCES.names()} (repeatable); default NEWSLETTER_SOURCES.",
        ),
    ] = None,
    categories: Annotated[str | None, typer.Option(help='arXiv categories, e.g. "cs.LG,cs.CL".')] = None,
    day: Annotated[str | None, typer.Option("--date", help="One day, YYYY-MM-DD.")] = None,
    since: Annotated[str | None, typer.Option(help="From this day (YYYY-MM-DD) until today.")] = None,
    url: Annotated[
        list[str] | None, typer.Option("--url", help="Feed URL for the rss source (repeatable).")
    ] = None,
    cross: Annotated[
        bool, typer.Option("--cross", help="Also take cross-listed papers from the listings feed.")
    ] = False,
    max_results: Annotated[
        int, typer.Option("--max-results", min=1, help="Stop the arXiv API after this many papers.")
    ] = 2000,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Fetch new papers from the sources; one failing source does not stop the others.

    Exits 1 when a source failed (the others' papers are kept).

    \b
    Examples:
      newsletter papers ingest                       # the sources in NEWSLETTER_SOURCES
      newsletter papers ingest -s arxiv --categories cs.LG,cs.CL --since 2026-07-01
      newsletter papers ingest -s hf-daily --date 2026-07-10
      newsletter papers ingest -s rss --url https://example.org/feed.xml
    """
    from newsletter.db import open_database
    from newsletter.papers.ingest import ingest

    settings = get_settings()
    options = {
        "categories": [c.strip() for c in categories.split(",") if c.strip()] if categories else None,
        "day": _parse_date(day, "--date"),
        "since": _parse_date(since, "--since"),
        "urls": url,
        "include_cross": cross,
        "max_results": max_results,
    }
    engine = open_database(settings)
    with _progress("ingesting") as progress:
        report = ingest(engine, settings, source, progress=progress, **options)
    if fmt != Format.TABLE:
        emit(
            [s.as_dict() for s in report.sources],
            fmt,
            ["source", "fetched", "new", "updated", "duplicates", "skipped", "error"],
        )
    for stats in report.sources:
        detail = f"FAILED: {stats.error}" if stats.error else stats.summary()
        _say(f"{stats.name}: {detail}" + (f" — {stats.note}" if stats.note else ""))
    _say(f"Ingested: {report.totals().summary()}.")
    if report.failed:
        raise typer.Exit(1)


@app.command("list")
def list_(
    since: Annotated[str | None, typer.Option(help="Only papers first seen on or after YYYY-MM-DD.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many papers.")] = 50,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List papers, most recently seen first. JSON keys: id, arxiv_id, title, abstract,
    authors, categories, published, url, upvotes, first_seen."""
    from newsletter.papers.queries import list_papers, paper_row

    with database() as session:
        rows = [paper_row(p) for p in list_papers(session, since=_parse_date(since, "--since"), limit=limit)]
    emit(rows, fmt, LIST_COLUMNS, title=f"{len(rows)} papers")


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="Paper number (from `papers list`) or arXiv id.")],
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Show everything stored about one paper, including its raw title and abstract."""
    from newsletter.papers.queries import find_paper, paper_detail

    with database() as session:
        emit_one(paper_detail(find_paper(session, ref)), fmt)
