"""Pieces every command group shares: settings, a database session, output options."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
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


class ProgressReport:
    """Progress of a long command: a bar on a terminal, a line every `every` seconds (and at
    the end) in a log, so cron mail and `journalctl` show that it moves."""

    def __init__(self, description: str, bar: Progress | None, every: float = 10.0) -> None:
        self.description = description
        self.done = 0
        self.total: int | None = None
        self._bar = bar
        self._task = bar.add_task(description, total=None) if bar is not None else None
        self._every = every
        self._last = time.monotonic()

    def set_total(self, total: int) -> None:
        """How many units the whole job has (when it becomes known)."""
        self.total = total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)

    def advance(self, count: int = 1) -> None:
        """`count` more units are done."""
        self.done += count
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, count)
            return
        now = time.monotonic()
        if now - self._last >= self._every or (self.total is not None and self.done >= self.total):
            self._last = now
            share = f" ({100 * self.done // self.total}%)" if self.total else ""
            of = f"/{self.total}" if self.total is not None else ""
            console.print(f"{self.description}: {self.done}{of}{share}", soft_wrap=True)


@contextmanager
def progress(description: str, every: float = 10.0) -> Iterator[ProgressReport]:
    """A ProgressReport drawn as a bar on a terminal, else as periodic lines on stderr."""
    if console.is_terminal:
        with Progress(console=console, transient=True) as bar:
            yield ProgressReport(description, bar, every)
    else:
        yield ProgressReport(description, None, every)


def warn_about_links(settings: Settings, host: str, port: int) -> None:
    """Say so when email links would not reach this server: NEWSLETTER_BASE_URL points at
    this machine on another port, or at loopback while the server listens for the world."""
    from urllib.parse import urlsplit

    parts = urlsplit(settings.base_url)
    local = parts.hostname in {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
    link_port = parts.port or (443 if parts.scheme == "https" else 80)
    if local and link_port != port:
        console.print(
            f"Warning: links in emails point at {settings.base_url}, but this server listens on port "
            f"{port}; set NEWSLETTER_BASE_URL to the address readers reach (see `newsletter doctor`).",
            soft_wrap=True,
        )
    elif local and host not in {"127.0.0.1", "localhost", "::1"}:
        console.print(
            f"Warning: the server accepts outside connections but links in emails point at "
            f"{settings.base_url}; set NEWSLETTER_BASE_URL to the public address.",
            soft_wrap=True,
        )
