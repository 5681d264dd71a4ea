"""Printing rows for people (rich tables) and for scripts (JSON with stable keys, CSV)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


class Format(StrEnum):
    """Output formats every listing command accepts."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def emit(
    rows: Sequence[Mapping[str, Any]],
    fmt: Format,
    columns: Sequence[str],
    *,
    title: str | None = None,
) -> None:
    """Print `rows` in `fmt`; table and CSV show `columns`, JSON keeps every key."""
    if fmt == Format.JSON:
        sys.stdout.write(json.dumps(list(rows), indent=2, ensure_ascii=False, default=str) + "\n")
    elif fmt == Format.CSV:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({name: _cell(row.get(name)) for name in columns})
    else:
        table = Table(title=title)
        for name in columns:
            table.add_column(name.replace("_", " "), overflow="fold")
        for row in rows:
            # Text(), not str: a title like "[Re] …" must not be read as rich markup.
            table.add_row(*(Text(_cell(row.get(name))) for name in columns))
        Console().print(table)


def emit_one(row: Mapping[str, Any], fmt: Format) -> None:
    """Print a single record: JSON object, or a two-column key/value table."""
    if fmt == Format.JSON:
        sys.stdout.write(json.dumps(dict(row), indent=2, ensure_ascii=False, default=str) + "\n")
        return
    emit([{"field": k, "value": _cell(v)} for k, v in row.items()], fmt, ["field", "value"])
