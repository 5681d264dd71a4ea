"""Digests recorded straight into the outbox (no ranking), and hooks on the statements the
outbox runs, for tests that need two things to happen in a fixed order without sleeping."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session, col, select

from newsletter.db import session_scope
from newsletter.delivery.models import Delivery, DeliveryItem
from subscribers.models import Status, Subscriber
from tests.support.papers import make_paper
from tests.support.requirements import ROOT


def record_digests(engine: Engine, readers: int, at: datetime, *, first: int = 0) -> dict[str, int]:
    """`readers` active subscribers (`reader<n>@example.org`, n from `first`), each with a
    pending digest of 3 papers for `at`'s date: address → delivery id.

    Their send hour is `at`'s UTC hour, so the scheduler's dispatch finds them due at `at`.
    """
    with session_scope(engine) as session:
        papers = [make_paper(i) for i in range(6 * first, 6 * first + 6)]
        session.add_all(papers)
        session.flush()
        ids = {}
        for n in range(first, first + readers):
            address = f"reader{n}@example.org"
            reader = Subscriber(
                email=address, email_key=address, interests=["graphs"], status=Status.ACTIVE,
                timezone="UTC", send_hour=at.hour,
            )  # fmt: skip
            session.add(reader)
            session.flush()
            assert reader.id is not None
            row = Delivery(
                subscriber_id=reader.id, digest_date=at.date(), message_id=f"<digest.{n}@example.org>"
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            for rank in range(3):
                paper_id = papers[(n + rank) % len(papers)].id
                assert paper_id is not None
                session.add(DeliveryItem(delivery_id=row.id, paper_id=paper_id, rank=rank + 1, score=0.9))
            ids[address] = row.id
    return ids


def rows(engine: Engine) -> dict[int, Delivery]:
    """Every outbox row by id."""
    with Session(engine) as session:
        return {
            r.id: r for r in session.exec(select(Delivery).order_by(col(Delivery.id))) if r.id is not None
        }


def _params(parameters: Any) -> list[Any]:
    if isinstance(parameters, dict):
        return list(parameters.values())
    if isinstance(parameters, tuple):
        return list(parameters)
    return []  # executemany: a list of parameter sets (the marks), never a claim


def is_claim(statement: str, parameters: Any) -> bool:
    """The conditional UPDATE that takes pending rows (pending → sending)."""
    return statement.lstrip().upper().startswith("UPDATE DELIVERY SET STATUS") and "sending" in _params(
        parameters
    )


def is_load(statement: str) -> bool:
    """The outbox reading the next pending rows to render."""
    return statement.lstrip().upper().startswith("SELECT") and "ORDER BY delivery.id" in statement


def mentions(parameters: Any, value: object) -> bool:
    """Whether a statement's bound parameters include `value`."""
    return value in _params(parameters)


@contextmanager
def on_statement(engine: Engine, hook: Callable[[str, Any], None]) -> Iterator[None]:
    """Call `hook(statement, parameters)` right before every statement the engine runs (it may
    wait, act on another connection, or raise to play a failing database)."""

    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        hook(statement, parameters)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", before)


def send_process(day: date) -> subprocess.Popen[str]:
    """A real `newsletter send --date DAY` in its own process (so a test can kill -9 it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send", "--date", day.isoformat()],
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
