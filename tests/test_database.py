"""Schema migrations on SQLite and PostgreSQL, and the guarantees the tables give."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from newsletter.db import check_drift, engine_for, pending_migrations, upgrade
from newsletter.delivery.models import Delivery
from newsletter.papers.models import Paper
from subscribers.models import Feedback, Subscriber


def test_upgrade_creates_schema_and_second_run_is_a_no_op(database_url: str) -> None:
    engine = engine_for(database_url)
    assert not pending_migrations(engine)
    assert upgrade(engine) is False
    tables = set(sa.inspect(engine).get_table_names())
    assert {"paper", "subscriber", "feedback", "delivery", "deliveryitem", "alembic_version"} <= tables


def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    check_drift(engine_for(database_url))


def test_db_upgrade_command_on_empty_database(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("db", "upgrade")
    assert result.exit_code == 0 and "already up to date" in result.stderr
    assert cli("db", "check").exit_code == 0


def test_sqlite_file_is_created_and_migrated_on_first_command(cli, isolated_env) -> None:  # type: ignore[no-untyped-def]
    assert cli("subscribers", "list").exit_code == 0
    db_file = isolated_env / "newsletter.db"
    assert db_file.exists()
    engine = engine_for(f"sqlite:///{db_file.resolve()}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_erasing_a_subscriber_cascades_to_feedback_and_deliveries(engine) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    with Session(engine) as s:
        sub = Subscriber(email="a@example.org", email_key="a@example.org", interests=["x"])
        paper = Paper(source="file", source_id="1", title="T", title_key="t")
        s.add_all([sub, paper])
        s.flush()
        s.add(Feedback(subscriber_id=sub.id, paper_id=paper.id, vote=1))
        s.add(Delivery(subscriber_id=sub.id, digest_date=dt.date(2026, 11, 27)))
        s.commit()
        s.delete(sub)
        s.commit()
        assert s.exec(select(Feedback)).all() == []
        assert s.exec(select(Delivery)).all() == []
        assert s.exec(select(Paper)).one().title == "T"


def test_email_is_unique_ignoring_case_at_the_database(engine) -> None:  # type: ignore[no-untyped-def]
    import pytest

    with Session(engine) as s:
        s.add(Subscriber(email="A@x.org", email_key="a@x.org"))
        s.commit()
        s.add(Subscriber(email="a@x.org", email_key="a@x.org"))
        with pytest.raises(sa.exc.IntegrityError):
            s.commit()


def test_timestamps_come_back_timezone_aware(engine) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        s.add(Subscriber(email="a@x.org", email_key="a@x.org"))
        s.commit()
    with Session(engine) as s:
        sub = s.exec(select(Subscriber)).one()
        assert sub.created_at.tzinfo is not None and sub.created_at.utcoffset().total_seconds() == 0
