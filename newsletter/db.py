"""Database engines, sessions and migrations.

SQLite is the embedded default: every command that needs the database migrates it to the
latest schema by itself, with foreign keys on and WAL journaling (readers never block the
sender). PostgreSQL is first-class: the same Alembic migrations run on it, but applying them
is an explicit `newsletter db upgrade`, as a DBA would expect.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Date, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session

from newsletter.errors import UserError
from newsletter.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
#: Ids per IN (...) list: far below SQLite's and PostgreSQL's bind-parameter limits.
QUERY_CHUNK = 900

T = TypeVar("T")


def chunked(items: Iterable[T], size: int = QUERY_CHUNK) -> Iterator[list[T]]:
    """`items` in lists of at most `size`, lazily: for IN-lists and for batched writes of a
    stream that must not be held in memory at once."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def owner_id() -> str:
    """A name for a lease or claim this process takes: where it runs, unique per call."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class utc_date(FunctionElement[date]):
    """`utc_date(column)`: the UTC calendar day of a timestamp column, for GROUP BY day.

    SQLite stores our timestamps as UTC text (`date()` reads its day); PostgreSQL's `date()`
    of a timestamptz would use the session's time zone, so it converts to UTC first.
    """

    type = Date()
    name = "utc_date"
    inherit_cache = True


@compiles(utc_date)
def _utc_date_sqlite(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_date, "postgresql")
def _utc_date_postgresql(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


def as_date(value: object) -> date:
    """A day as a database returns it (a date on PostgreSQL, ISO text on SQLite)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@lru_cache(maxsize=16)
def engine_for(url: str) -> Engine:
    """One engine per URL per process (engines own connection pools)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UserError(
            f"NEWSLETTER_DATABASE_URL is not a database URL ({exc}); "
            "use e.g. sqlite:///var/newsletter.db or postgresql+psycopg://user@host/db"
        ) from None
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True)


def is_sqlite(engine: Engine) -> bool:
    """True for the embedded database, which migrates itself."""
    return engine.dialect.name == "sqlite"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs our packaged migrations on `engine`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def _revisions(engine: Engine) -> tuple[set[str], set[str]]:
    head = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current, head


def pending_migrations(engine: Engine) -> bool:
    """Whether the schema is behind the code's migrations."""
    current, head = _revisions(engine)
    return current != head


def upgrade(engine: Engine) -> bool:
    """Apply pending migrations; returns False when there was nothing to do."""
    if not pending_migrations(engine):
        return False
    command.upgrade(alembic_config(engine), "head")
    return True


def check_drift(engine: Engine) -> None:
    """Raise when models and migrations disagree (the `alembic check` of this project)."""
    command.check(alembic_config(engine))


def open_database(settings: Settings) -> Engine:
    """The engine for `settings`, migrated (SQLite) or verified up to date (others)."""
    engine = engine_for(settings.resolved_database_url)
    try:
        behind = pending_migrations(engine)
    except OperationalError as exc:
        raise UserError(
            f"cannot open the database at {make_url(settings.resolved_database_url)!r}: "
            f"{exc.orig}; check NEWSLETTER_DATABASE_URL"
        ) from None
    if behind:
        if not is_sqlite(engine):
            raise UserError("the database schema is not up to date; run `newsletter db upgrade`")
        upgrade(engine)
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error (nothing half-written)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
