"""`papers import`: the shared sample files, the documented formats, bad input, interruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from benchmarks.import_memory import write_synthetic_snapshot
from newsletter.db import session_scope
from newsletter.papers.importers import import_file
from newsletter.papers.models import Paper
from newsletter.papers.records import PaperRecord, SourceStats
from newsletter.papers.store import store_records
from tests.support.requirements import ROOT, shared

PAGE = "data/papers-page.txt"
SNAPSHOT = "eval/arxiv-2007/arxiv-metadata-sample.jsonl"


def papers(engine: Engine) -> list[Paper]:
    with Session(engine) as s:
        return list(s.exec(select(Paper).order_by(Paper.id)))


def count(engine: Engine) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(Paper)).one()


def test_the_papers_page_imports_its_116_papers_once(cli, engine: Engine) -> None:
    first = cli("papers", "import", str(shared(PAGE)))
    assert first.exit_code == 0, first.output
    assert "as papers-page (detected)" in first.output
    assert "fetched 116, new 116, updated 0, duplicates 0, skipped 0" in first.output
    again = cli("papers", "import", str(shared(PAGE)))
    assert "new 0, updated 0, duplicates 116" in again.output

    rows = papers(engine)
    assert len(rows) == 116
    assert not [p.title for p in rows if p.title.startswith("Subscribe") or "\\boldsymbol" in p.title]
    assert rows[0].title == "ART·V: Auto-Regressive Text-to-Video Generation with Diffusion Models"
    assert rows[0].title_raw.startswith(r"ART$\boldsymbol{\cdot}$V")  # the original is kept
    assert rows[1].title == "Zero-Shot Image Restoration Using Denoising Diffusion Null-Space Model"
    assert all(len(p.abstract) > 400 for p in rows)


def test_the_arxiv_snapshot_sample_imports_2000_papers_with_their_categories(cli, engine: Engine) -> None:
    result = cli("papers", "import", str(shared(SNAPSHOT)))
    assert result.exit_code == 0, result.output
    assert "as arxiv-snapshot (detected)" in result.output
    assert "fetched 2000, new 2000" in result.output
    rows = papers(engine)
    assert len(rows) == 2000
    primary = Counter(p.primary_category for p in rows)
    assert primary["astro-ph"] == 398 and primary["hep-ph"] == 131  # as the sample's README says
    first = next(p for p in rows if p.arxiv_id == "0704.0001")
    assert first.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]
    assert first.arxiv_version == 2 and first.published_at.year == 2007
    assert (
        first.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    pebble = next(p for p in rows if p.arxiv_id == "0704.0002")
    assert pebble.categories == ["math.CO", "cs.CG"]
    assert "(k,ℓ)-pebble game" in pebble.abstract and "$" not in pebble.abstract
    assert "0704.0010" in {p.arxiv_id for p in rows}  # "0704.001" in the sample lost its zero

    assert "new 0, updated 0, duplicates 2000" in cli("papers", "import", str(shared(SNAPSHOT))).output


def test_jsonl_and_csv_follow_the_documented_schema_and_skip_bad_rows_by_line(
    cli, engine: Engine, tmp_path: Path
) -> None:
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text(
        json.dumps(
            {
                "title": "Sparse Attention",
                "abstract": "We study sparsity.",
                "id": "2401.00001v2",
                "authors": ["Ada Lovelace", "Alan Turing"],
                "categories": "cs.LG cs.CL",
                "date": "2024-01-02",
                "upvotes": 7,
            }
        )
        + "\n"
        + "{not json\n"
        + json.dumps({"abstract": "no title"})
        + "\n\n"
        + json.dumps({"title": "Blog Post", "abstract": "A post.", "url": "https://blog.example/p"})
        + "\n"
    )
    result = cli("papers", "import", str(jsonl))
    assert "as jsonl (detected)" in result.output
    assert "fetched 4, new 2, updated 0, duplicates 0, skipped 2" in result.output
    assert "line 2: not valid JSON" in result.output and "line 3: missing title" in result.output

    table = tmp_path / "mine.csv"
    table.write_text(
        "title,abstract,authors,categories,date\n"
        '"Sparse  attention",We study sparsity.,Ada Lovelace; Alan Turing,cs.LG,2024-01-02\n'
        'Dense Retrieval,"Retrieval, densely.",Grace Hopper,cs.IR,not-a-date\n'
        "Dense Retrieval Two,Retrieval again.,Grace Hopper,cs.IR,2024-02-03\n"
    )
    result = cli("papers", "import", str(table))
    assert "as csv (detected)" in result.output
    assert "new 1, updated 0, duplicates 1, skipped 1" in result.output  # same title as jsonl row
    assert "line 3: unreadable date" in result.output
    by_title = {p.title: p for p in papers(engine)}
    assert by_title["Sparse Attention"].arxiv_id == "2401.00001"
    assert by_title["Sparse Attention"].upvotes == 7
    assert by_title["Sparse Attention"].categories == ["cs.LG", "cs.CL"]
    assert by_title["Dense Retrieval Two"].authors == ["Grace Hopper"]
    assert by_title["Blog Post"].url == "https://blog.example/p"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "cannot read"),
        (b"", [], "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", [], "binary file"),
        (b"just some words\nand more words\n", [], "no papers found"),
        (b'{"title": "A", "abstract": "B"}\n', ["--format", "csv"], "no `title` column"),
        (b"title,abstract\nA,B\n", ["--format", "jsonl"], "no papers found"),
        (b"title,abstract\nA,B\n", ["--format", "yaml"], "Invalid value"),
    ],
)
def test_an_unreadable_or_wrong_format_file_exits_2_and_writes_nothing(
    cli, engine: Engine, tmp_path: Path, content: bytes | None, args: list[str], message: str
) -> None:
    cli("papers", "import", str(shared(PAGE)))
    path = tmp_path / "input.txt"
    if content is not None:
        path.write_bytes(content)
    result = cli("papers", "import", str(path), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert count(engine) == 116


def test_a_paper_imported_without_an_id_adopts_the_arxiv_id_later(engine: Engine, session: Session) -> None:
    with session_scope(engine) as s:
        import_file(s, shared(PAGE))
    zero_shot = "Zero-Shot Image Restoration Using Denoising Diffusion Null-Space Model"
    record = PaperRecord(
        source="arxiv",
        source_id="2212.00490v2",
        title=zero_shot,
        abstract="Short.",
        arxiv_id="2212.00490",
        arxiv_version=2,
        categories=["cs.CV"],
        links={"abs": "https://arxiv.org/abs/2212.00490"},
    )
    with session_scope(engine) as s:
        stats = store_records(s, [record], SourceStats("arxiv"))
    assert (stats.new, stats.updated) == (0, 1)
    assert count(engine) == 116
    adopted = session.exec(select(Paper).where(Paper.arxiv_id == "2212.00490")).one()
    assert adopted.title == zero_shot and adopted.categories == ["cs.CV"]
    assert adopted.arxiv_version == 2
    assert len(adopted.abstract) > 400  # the richer abstract from the page is kept


def test_ctrl_c_during_an_import_leaves_the_database_as_before(engine: Engine) -> None:
    with session_scope(engine) as s:
        import_file(s, shared(PAGE))

    def interrupt(stats: SourceStats, fraction: float | None) -> None:
        if stats.fetched >= 1000:
            raise KeyboardInterrupt  # what Ctrl-C raises, here after 1,000 stored rows

    with pytest.raises(KeyboardInterrupt), session_scope(engine) as s:
        import_file(s, shared(SNAPSHOT), progress=interrupt)
    assert count(engine) == 116


def test_sigint_to_a_running_import_process_writes_nothing(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    big = write_synthetic_snapshot(shared(SNAPSHOT), tmp_path / "big.jsonl", 40_000)
    env = {**os.environ, "NEWSLETTER_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "papers", "import", str(big)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    writing = False
    try:
        for line in process.stderr:  # wait until rows are being written, then press Ctrl-C
            if " read (" in line:
                writing = True
                break
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=60)[1]
    finally:
        if process.poll() is None:
            process.kill()
    assert writing, "the import never reported progress"
    assert process.returncode == 130, rest  # 128 + SIGINT: stopped by Ctrl-C, not crashed
    assert count(engine) == 0
