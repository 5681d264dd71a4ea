"""`papers import`: papers from files, streamed, in one of four formats (or detected).

Formats (the schema of `jsonl` and `csv` is in the README, "Importing papers"):

- `papers-page`: the text of a papers web page — a few header lines, then a title line and
  an abstract line per paper (a web page's "Subscribe" button label is glued to the first
  title and is removed).
- `jsonl`: one JSON object per line: `title`, `abstract` required; `id`, `authors`,
  `categories`, `date`, `url`, `upvotes` optional.
- `csv`: a header row with the same column names; authors separated by `;`.
- `arxiv-snapshot`: the JSON lines of Cornell's arXiv metadata snapshot (Kaggle).

Files are read line by line and stored in chunks, so a multi-gigabyte snapshot never sits in
memory. The import writes into the caller's session and commits nothing: the caller's one
transaction makes an import all-or-nothing, also when it is interrupted.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlmodel import Session

from newsletter.errors import UserError
from newsletter.papers.records import PaperRecord, Progress, Skip, SourceStats, parse_arxiv_id
from newsletter.papers.sources.base import Fetched, parse_datetime
from newsletter.papers.store import store_records

FORMATS = ("papers-page", "jsonl", "csv", "arxiv-snapshot")
#: Keys only Cornell's snapshot has; any of them in the first object means `arxiv-snapshot`.
_SNAPSHOT_KEYS = {"authors_parsed", "versions", "update_date", "journal-ref"}
#: `0704.001`: a new-style id whose trailing zeros a spreadsheet round trip dropped (0704.0010).
_SHORTENED_ID = re.compile(r"\d{4}\.\d{1,3}")
#: A web page's button label glued to the first title ("SubscribeART·V: …").
_BUTTON_LABEL = re.compile(r"^Subscribe(?=\S)")
#: Shortest line taken as an abstract in a papers page (titles are a line of ~150 chars).
_MIN_ABSTRACT = 150


@dataclass
class ImportResult:
    """What an import did: the format used (and whether it was detected) and the counts."""

    format: str
    detected: bool
    stats: SourceStats


class _Lines:
    """A file's decoded lines with their numbers, and how far through the file we are."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self._handle, self._size, self.position = handle, size, 0

    def __iter__(self) -> Iterator[tuple[int, str | None]]:
        for number, raw in enumerate(self._handle, start=1):
            self.position += len(raw)
            try:
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                yield number, None

    @property
    def fraction(self) -> float | None:
        return min(self.position / self._size, 1.0) if self._size else None


def _split_list(value: Any, separators: str) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if not value:
        return []
    return [part.strip() for part in re.split(f"[{separators}]", str(value)) if part.strip()]


def record_from_mapping(
    row: dict[str, Any], where: str, *, source: str, authors_sep: str
) -> PaperRecord | Skip:
    """A `jsonl`/`csv` row (documented schema) as a record."""
    title = str(row.get("title") or "")
    if not title.strip():
        return Skip("missing title", where)
    abstract = str(row.get("abstract") or "")
    if not abstract.strip():
        return Skip("missing abstract", where)
    raw_id = str(row.get("id") or "").strip()
    arxiv_id, version = parse_arxiv_id(raw_id or row.get("url"))
    published = parse_datetime(str(row["date"])) if row.get("date") else None
    if row.get("date") and published is None:
        return Skip("unreadable date (use YYYY-MM-DD)", where)
    categories = _split_list(row.get("categories"), ", ")
    try:
        upvotes = int(row["upvotes"]) if row.get("upvotes") not in (None, "") else None
    except (TypeError, ValueError):
        return Skip("upvotes is not a number", where)
    url = str(row.get("url") or "") or (f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None)
    return PaperRecord(
        source=source,
        source_id=raw_id or where,
        title=title,
        abstract=abstract,
        authors=_split_list(row.get("authors"), authors_sep),
        categories=categories,
        primary_category=categories[0] if categories else None,
        arxiv_id=arxiv_id,
        arxiv_version=version,
        published_at=published,
        url=url,
        upvotes=upvotes,
        links={"url": url} if url else {},
    )


def _snapshot_date(value: Any) -> datetime | None:
    """`update_date` is `2008-11-26` in the snapshot, `11/26/2008` in some re-exports."""
    if not value:
        return None
    for pattern in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(str(value), pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def record_from_snapshot(row: dict[str, Any], where: str) -> PaperRecord | Skip:
    """One object of Cornell's arXiv metadata snapshot as a record."""
    raw_id = str(row.get("id") or "").strip()
    if _SHORTENED_ID.fullmatch(raw_id):
        raw_id = raw_id.ljust(9, "0")
    arxiv_id, _ = parse_arxiv_id(raw_id)
    if not arxiv_id:
        return Skip("missing or invalid arXiv id", where)
    if not str(row.get("title") or "").strip():
        return Skip("missing title", where)
    versions = row.get("versions") or []
    version_numbers = [
        int(v["version"].lstrip("v")) for v in versions if isinstance(v, dict) and v.get("version")
    ]
    first_created = versions[0].get("created") if versions and isinstance(versions[0], dict) else None
    parsed = row.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        authors = [" ".join(p for p in (a[1], a[0], *a[2:]) if p).strip() for a in parsed if a]
    else:
        authors = _split_list(str(row.get("authors") or "").replace(" and ", ", "), ",")
    categories = str(row.get("categories") or "").split()
    links = {"abs": f"https://arxiv.org/abs/{arxiv_id}"}
    if row.get("doi"):
        links["doi"] = f"https://doi.org/{str(row['doi']).split()[0]}"
    return PaperRecord(
        source="arxiv-snapshot",
        source_id=arxiv_id,
        title=str(row["title"]),
        abstract=str(row.get("abstract") or ""),
        authors=authors,
        categories=categories,
        primary_category=categories[0] if categories else None,
        arxiv_id=arxiv_id,
        arxiv_version=max(version_numbers) if version_numbers else None,
        published_at=parse_datetime(first_created),
        updated_at=_snapshot_date(row.get("update_date")),
        url=links["abs"],
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        links=links,
    )


def _json_lines(lines: _Lines, snapshot: bool) -> Fetched:
    for number, text in lines:
        where = f"line {number}"
        if text is None:
            yield Skip("not UTF-8 text", where)
            continue
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError:
            yield Skip("not valid JSON", where)
            continue
        if not isinstance(row, dict):
            yield Skip("not a JSON object", where)
        elif snapshot:
            yield record_from_snapshot(row, where)
        else:
            yield record_from_mapping(row, where, source="jsonl", authors_sep=",;")


def _csv_rows(lines: _Lines, path: Path) -> Fetched:
    texts = (text if text is not None else "\ufffd\n" for _, text in lines)
    reader = csv.DictReader(texts)
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "title" not in fields:
        raise UserError(
            f"{path} has no `title` column; a CSV import needs a header row such as "
            "title,abstract,id,authors,categories,date,url"
        )
    reader.fieldnames = fields
    for row in reader:
        where = f"line {reader.line_num}"
        if None in row:
            yield Skip("more cells than header columns", where)
            continue
        yield record_from_mapping(row, where, source="csv", authors_sep=";")


def _papers_page(lines: _Lines, path: Path) -> Fetched:
    """Title/abstract line pairs after the page's header lines."""
    pending: tuple[int, str] | None = None  # a title waiting for its abstract
    first = True
    for number, text in lines:
        if text is None:
            yield Skip("not UTF-8 text", f"line {number}")
            continue
        line = text.strip()
        if not line:
            continue
        if pending and len(line) >= _MIN_ABSTRACT and len(line) > len(pending[1]):
            title = _BUTTON_LABEL.sub("", pending[1]) if first else pending[1]
            first = False
            yield PaperRecord(
                source="papers-page",
                source_id=f"{path.name}#L{pending[0]}",
                title=title,
                abstract=line,
            )
            pending = None
            continue
        if pending and not first:
            yield Skip("title line without an abstract line", f"line {pending[0]}")
        pending = (number, line)  # before the first pair, unmatched lines are page header


def detect_format(path: Path) -> str:
    """The format of `path` judged from its first non-empty line."""
    with _open(path) as handle:
        for raw in handle:
            try:
                line = raw.decode("utf-8-sig").strip()
            except UnicodeDecodeError:
                raise UserError(f"{path} is not UTF-8 text; papers files must be UTF-8") from None
            if not line:
                continue
            if line.startswith("{"):
                try:
                    keys = set(json.loads(line))
                except (json.JSONDecodeError, TypeError):
                    return "jsonl"
                return "arxiv-snapshot" if keys & _SNAPSHOT_KEYS else "jsonl"
            header = next(csv.reader([line]))
            if len(header) > 1 and "title" in {h.strip().lower() for h in header}:
                return "csv"
            return "papers-page"
    raise UserError(f"{path} is empty; nothing to import")


def _open(path: Path) -> IO[bytes]:
    try:
        handle = path.open("rb")
    except IsADirectoryError:
        raise UserError(f"{path} is a folder; give a papers file") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}; check the path") from None
    if b"\x00" in handle.read(8192):
        handle.close()
        raise UserError(f"{path} is a binary file, not papers text/JSON/CSV")
    handle.seek(0)
    return handle


def import_file(
    session: Session, path: Path, fmt: str = "auto", *, progress: Progress | None = None
) -> ImportResult:
    """Import every paper in `path` into `session` (flushed, not committed).

    Raises UserError, before anything is kept, for an unreadable file, an unknown format or
    a file in which no line is a paper in the chosen format.
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; use auto or one of {', '.join(FORMATS)}")
    detected = fmt == "auto"
    chosen = detect_format(path) if detected else fmt
    stats = SourceStats(name=f"{path.name} ({chosen})")
    with _open(path) as handle:
        lines = _Lines(handle, path.stat().st_size)
        if chosen in ("jsonl", "arxiv-snapshot"):
            items = _json_lines(lines, snapshot=chosen == "arxiv-snapshot")
        elif chosen == "csv":
            items = _csv_rows(lines, path)
        else:
            items = _papers_page(lines, path)
        on_chunk = (lambda s: progress(s, lines.fraction)) if progress else None
        store_records(session, items, stats, progress=on_chunk)
    if stats.fetched == stats.skipped_total:
        first = f" (first problem: {stats.examples[0]})" if stats.examples else ""
        raise UserError(
            f"no papers found in {path} read as {chosen}{first}; "
            f"check the file or pass the right --format ({', '.join(FORMATS)})"
        )
    return ImportResult(format=chosen, detected=detected, stats=stats)
