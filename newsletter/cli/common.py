"""Pieces every command group shares: settings, a database session, output options."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from sqlmodel import Session

from newsletter.cli.output import Format
from newsletter.db import open_database, session_scope
from newsletter.settings import Settings, get_settings

#: Messages for people go to stderr so stdout stays clean for --format json|csv.
console = Console(stderr=True, highlight=False)

FormatOption = Annotated[
    Format, typer.Option("--format", "-f", help="table for people, json or csv for scripts.")
]


@contextmanager
def database(settings: Settings | None = None) -> Iterator[Session]:
    """A committed-on-success session on the (migrated) configured database."""
    engine = open_database(settings or get_settings())
    with session_scope(engine) as session:
        yield session
