"""The scheduled service end to end: dispatch at each subscriber's local hour, restarts,
two schedulers on one database, misfires, quiet days — on a clock the test moves.

Everything is real: the database (SQLite and PostgreSQL), APScheduler's job processing and
job store, the outbox, the ranking model, MJML rendering and the file transport. Only the
clock is the test's (time-machine); nothing sleeps.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from jobs.digest import dispatch
from jobs.scheduler import SchedulerService, ensure_jobs
from newsletter.db import session_scope
from newsletter.delivery.models import Delivery, DeliveryItem, DeliveryStatus
from newsletter.papers.importers import import_file
from newsletter.papers.models import Paper
from newsletter.sample_data import PAPERS_PAGE
from newsletter.settings import Settings
from subscribers import service
from tests.support.scheduler import stepped_service

pytestmark = pytest.mark.slow  # ranks with the real embedding model


@pytest.fixture(autouse=True)
def no_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler's ingest job runs too: with no sources enabled it only embeds, offline."""
    monkeypatch.setenv("NEWSLETTER_SOURCES", "")


TICK = timedelta(minutes=5)


# --- helpers -------------------------------------------------------------------------


@pytest.fixture
def batches(tmp_path: Path) -> list[Path]:
    """The bundled sample page cut into three files, to arrive on three different days."""
    lines = PAPERS_PAGE.read_text(encoding="utf-8").splitlines()
    header, pairs = lines[:2], [lines[i : i + 2] for i in range(2, len(lines) - 1, 2)]
    third = len(pairs) // 3
    parts = [pairs[:third], pairs[third : 2 * third], pairs[2 * third :]]
    paths = []
    for number, part in enumerate(parts, start=1):
        path = tmp_path / f"batch{number}.txt"
        path.write_text("\n".join(header + [line for pair in part for line in pair]) + "\n")
        paths.append(path)
    return paths


def arrive(engine: Engine, path: Path) -> set[int]:
    """Import a batch of papers now (on the test's clock); returns the new papers' ids."""
    before = _paper_ids(engine)
    with session_scope(engine) as session:
        import_file(session, path)
    return _paper_ids(engine) - before


def _paper_ids(engine: Engine) -> set[int]:
    with Session(engine) as session:
        return set(session.exec(select(Paper.id)))  # type: ignore[arg-type]


def subscribe(
    engine: Engine, email: str, timezone: str, interests: str, *, hour: int = 7, send_empty: bool = False
) -> int:
    with session_scope(engine) as session:
        data = service.build_create(
            email, interests, timezone=timezone, send_hour=hour, max_papers=50,
            send_empty=send_empty, confirmed=True,
        )  # fmt: skip
        subscriber = service.create(session, data)
        assert subscriber.id is not None
        return subscriber.id


def deliveries(engine: Engine) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.exec(select(Delivery).order_by(col(Delivery.id))))


def items_of(engine: Engine, delivery: Delivery) -> set[int]:
    with Session(engine) as session:
        return set(session.exec(select(DeliveryItem.paper_id).where(DeliveryItem.delivery_id == delivery.id)))


def emails(settings: Settings) -> Counter[tuple[str, str]]:
    """(recipient, digest date folder) of every message the file transport wrote."""
    found: Counter[tuple[str, str]] = Counter()
    for path in (settings.home / "outbox").rglob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        found[(str(message["To"]).split("<")[-1].rstrip(">"), path.parent.name)] += 1
    return found


def ticks(start: datetime, end: datetime) -> Iterator[datetime]:
    now = start
    while now < end:
        yield now
        now += TICK


def local(moment: datetime | None, timezone: str) -> datetime:
    assert moment is not None
    return moment.astimezone(ZoneInfo(timezone))


# --- the simulated days ----------------------------------------------------------------

# Berlin leaves summer time at 01:00 UTC on Sunday 25 October 2026.
DST_START = datetime(2026, 10, 24, 2, 30, tzinfo=UTC)  # no one's send time within the grace period

PEOPLE = {
    "tokyo@example.org": ("Asia/Tokyo", 7, "graph neural networks"),
    "berlin@example.org": ("Europe/Berlin", 7, "diffusion models for image generation"),
    "newyork@example.org": ("America/New_York", 7, "large language models"),
    # 02:00 happens twice in Berlin on 25 October: still one digest.
    "night@example.org": ("Europe/Berlin", 2, "network pruning"),
}


def test_a_simulated_48_hours_across_a_dst_change_sends_each_one_digest_per_local_day_at_their_hour(
    engine: Engine, settings: Settings, batches: list[Path]
) -> None:
    with time_machine.travel(DST_START, tick=False) as clock:
        arrive(engine, batches[0])
        ids = {
            email: subscribe(engine, email, tz, interests, hour=hour, send_empty=True)
            for email, (tz, hour, interests) in PEOPLE.items()
        }
        for now in ticks(DST_START, DST_START + timedelta(hours=48)):
            clock.move_to(now)
            if now == DST_START + timedelta(hours=24):
                arrive(engine, batches[1])
            dispatch(settings)

    rows = deliveries(engine)
    per_day = Counter((row.subscriber_id, row.digest_date) for row in rows)
    assert set(per_day.values()) == {1}
    expected = {
        "tokyo@example.org": [date(2026, 10, 25), date(2026, 10, 26)],
        "berlin@example.org": [date(2026, 10, 24), date(2026, 10, 25)],
        "newyork@example.org": [date(2026, 10, 24), date(2026, 10, 25)],
        "night@example.org": [date(2026, 10, 25), date(2026, 10, 26)],
    }
    for email, days in expected.items():
        tz, hour, _ = PEOPLE[email]
        mine = [row for row in rows if row.subscriber_id == ids[email]]
        assert [row.digest_date for row in mine] == days, email
        for row in mine:
            assert row.status == DeliveryStatus.SENT, (email, row.last_error)
            sent = local(row.sent_at, tz)
            # At the send hour, on the dispatch tick that first saw it due.
            assert (sent.date(), sent.hour, sent.minute) == (row.digest_date, hour, 0), email
    # The ambiguous 02:00 resolved to its first occurrence (still summer time).
    [night] = [
        row for row in rows
        if row.subscriber_id == ids["night@example.org"] and row.digest_date == date(2026, 10, 25)
    ]  # fmt: skip
    assert night.sent_at == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    # One email per delivery, in the folder of its local date.
    sent_mail = emails(settings)
    assert sum(sent_mail.values()) == len(rows)
    assert set(sent_mail.values()) == {1}


# Times in late November: Tokyo 07:00 = 22:00 UTC, Berlin 07:00 = 06:00 UTC, New York 07:00 = 12:00 UTC.
NOV_26_EVENING = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
WORLD = {
    "tokyo@example.org": ("Asia/Tokyo", "graph neural networks"),
    "berlin@example.org": ("Europe/Berlin", "diffusion models for image generation"),
    "newyork@example.org": ("America/New_York", "large language models"),
}


def _subscribe_world(engine: Engine) -> dict[str, int]:
    return {email: subscribe(engine, email, tz, interests) for email, (tz, interests) in WORLD.items()}


def _run(service: SchedulerService, clock: time_machine.Coordinates, start: datetime, end: datetime) -> None:
    """Keep one scheduler alive from `start` to `end`: heartbeat and process jobs each tick."""
    for now in ticks(start, end):
        clock.move_to(now)
        service.heartbeat()
        service.scheduler.step()  # type: ignore[attr-defined]


def test_a_killed_and_restarted_scheduler_neither_loses_nor_repeats_a_digest(
    engine: Engine, settings: Settings, batches: list[Path]
) -> None:
    at = NOV_26_EVENING
    with time_machine.travel(at, tick=False) as clock:
        arrive(engine, batches[0])
        ids = _subscribe_world(engine)

        first = stepped_service(settings, engine, "first")
        first.start()
        _run(first, clock, at, at + timedelta(minutes=115))  # killed at 21:55, before Tokyo's 22:00

        second = stepped_service(settings, engine, "second")  # back at 22:40 (lease long expired)
        clock.move_to(at + timedelta(minutes=160))
        second.start()
        assert second.is_leader
        _run(second, clock, at + timedelta(minutes=160), at + timedelta(hours=10, minutes=5))
        # killed right after Berlin's 06:00 digest went out; a third one starts at 06:10
        third = stepped_service(settings, engine, "third")
        clock.move_to(at + timedelta(hours=10, minutes=10))
        third.start()
        _run(third, clock, at + timedelta(hours=10, minutes=10), at + timedelta(hours=17))
        third.stop()

    rows = deliveries(engine)
    assert Counter(row.subscriber_id for row in rows) == Counter(ids.values())
    by_subscriber = {row.subscriber_id: row for row in rows}
    assert all(row.status == DeliveryStatus.SENT and row.digest_date == date(2026, 11, 27) for row in rows)
    # Tokyo's 07:00 digest, due while no scheduler ran, went out when the next one started:
    assert by_subscriber[ids["tokyo@example.org"]].sent_at == at + timedelta(minutes=160)
    assert by_subscriber[ids["berlin@example.org"]].sent_at == datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    assert by_subscriber[ids["newyork@example.org"]].sent_at == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert sum(emails(settings).values()) == 3


def test_two_schedulers_on_one_database_send_each_digest_once_and_the_standby_takes_over(
    engine: Engine, settings: Settings, batches: list[Path]
) -> None:
    at = NOV_26_EVENING
    with time_machine.travel(at, tick=False) as clock:
        arrive(engine, batches[0])
        ids = _subscribe_world(engine)
        leader = stepped_service(settings, engine, "leader")
        standby = stepped_service(settings, engine, "standby")
        leader.start()
        standby.start()
        assert (leader.is_leader, standby.is_leader) == (True, False)
        death = at + timedelta(hours=12)  # the leader dies at 08:00 UTC, after Berlin's digest
        handover = None
        for now in ticks(at, at + timedelta(hours=41)):
            clock.move_to(now)
            if now == at + timedelta(hours=20):
                arrive(engine, batches[1])
            for service in [standby] if now >= death else [leader, standby]:
                service.heartbeat()
                service.scheduler.step()  # type: ignore[attr-defined]
            if standby.is_leader and handover is None:
                handover = now
        standby.stop()

    assert handover is not None
    assert death <= handover <= death + timedelta(seconds=settings.scheduler_lease_seconds) + TICK
    rows = deliveries(engine)
    assert set(Counter((row.subscriber_id, row.digest_date) for row in rows).values()) == {1}
    assert Counter(row.subscriber_id for row in rows) == Counter({sid: 2 for sid in ids.values()})
    sent = [row for row in rows if row.status == DeliveryStatus.SENT]
    assert sum(emails(settings).values()) == len(sent)


def test_two_dispatch_runs_racing_at_the_same_instant_still_send_once(
    engine: Engine, settings: Settings, batches: list[Path]
) -> None:
    """The outbox's uniqueness is the second line of defence when leases are not enough."""
    import threading

    at = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        arrive(engine, batches[0])
        subscribe(engine, "berlin@example.org", "Europe/Berlin", "diffusion models")
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def run() -> None:
            start.wait(timeout=30)
            try:
                dispatch(settings)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
    assert not errors
    assert [row.status for row in deliveries(engine)] == [DeliveryStatus.SENT]
    assert sum(emails(settings).values()) == 1


def test_a_digest_missed_beyond_the_grace_period_is_recorded_not_sent_late_and_the_next_one_covers_the_gap(
    engine: Engine, settings: Settings, batches: list[Path]
) -> None:
    tz = "Europe/Berlin"  # 07:00 = 06:00 UTC
    day = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    with time_machine.travel(day, tick=False) as clock:
        arrive(engine, batches[0])
        sid = subscribe(engine, "berlin@example.org", tz, "graph neural networks, network pruning")
        clock.move_to(day + timedelta(hours=1))
        dispatch(settings)  # 25 Nov, sent on time
        clock.move_to(day + timedelta(hours=7))
        second = arrive(engine, batches[1])  # papers arrive on the 25th at noon
        # The machine is off through 07:00 on the 26th; it comes back at 10:00 local.
        clock.move_to(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
        report = dispatch(settings)
        assert report.missed == [(sid, date(2026, 11, 26))]
        clock.move_to(datetime(2026, 11, 26, 11, 0, tzinfo=UTC))
        third = arrive(engine, batches[2])
        dispatch(settings)  # nothing more for the 26th
        clock.move_to(datetime(2026, 11, 27, 6, 0, tzinfo=UTC))
        dispatch(settings)

    first, missed, after = deliveries(engine)
    assert (first.digest_date, first.status) == (date(2026, 11, 25), DeliveryStatus.SENT)
    assert (missed.digest_date, missed.status) == (date(2026, 11, 26), DeliveryStatus.MISSED)
    assert "grace period" in (missed.last_error or "")
    assert (after.digest_date, after.status) == (date(2026, 11, 27), DeliveryStatus.SENT)
    assert emails(settings) == Counter(
        {("berlin@example.org", "2026-11-25"): 1, ("berlin@example.org", "2026-11-27"): 1}
    )
    # The digest after the gap carries papers from both days since the last one sent.
    carried = items_of(engine, after)
    assert carried & second and carried & third
    assert not carried & items_of(engine, first)


def test_quiet_days_follow_each_subscribers_send_empty_setting_and_the_next_digest_catches_up(
    engine: Engine, settings: Settings, batches: list[Path]
) -> None:
    day = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)  # 07:00 in Berlin
    with time_machine.travel(day - timedelta(hours=1), tick=False) as clock:
        arrive(engine, batches[0])
        quiet = subscribe(engine, "quiet@example.org", "Europe/Berlin", "graph neural networks")
        noted = subscribe(
            engine, "noted@example.org", "Europe/Berlin", "graph neural networks", send_empty=True
        )
        clock.move_to(day)
        dispatch(settings)
        clock.move_to(day + timedelta(days=1))  # nothing arrived since: a quiet day
        dispatch(settings)
        clock.move_to(day + timedelta(days=1, hours=6))
        late = arrive(engine, batches[1])
        clock.move_to(day + timedelta(days=2))
        dispatch(settings)

    rows = {(row.subscriber_id, row.digest_date): row for row in deliveries(engine)}
    quiet_day = date(2026, 11, 26)
    assert rows[(quiet, quiet_day)].status == DeliveryStatus.SKIPPED
    assert rows[(noted, quiet_day)].status == DeliveryStatus.SENT
    assert not items_of(engine, rows[(noted, quiet_day)])
    mail = emails(settings)
    assert ("quiet@example.org", "2026-11-26") not in mail
    assert mail[("noted@example.org", "2026-11-26")] == 1
    for sid in (quiet, noted):
        assert items_of(engine, rows[(sid, date(2026, 11, 27))]) & late


# --- the CLI -----------------------------------------------------------------------------


def test_jobs_list_on_a_fresh_data_folder_shows_ingest_and_dispatch_with_their_next_runs(
    cli, isolated_env: Path
) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(datetime(2026, 11, 27, 18, 12, tzinfo=UTC), tick=False):
        result = cli("jobs", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"ingest", "dispatch"}
    assert rows["dispatch"]["next_run_utc"] == "2026-11-27T18:15:00+00:00"
    assert rows["ingest"]["next_run_utc"] == "2026-11-27T21:10:00+00:00"
    assert {row["next_run_from"] for row in rows.values()} == {"trigger"}
    assert rows["dispatch"]["function"] == "jobs.digest:dispatch"
    assert datetime.fromisoformat(rows["dispatch"]["next_run_local"]) == datetime(
        2026, 11, 27, 18, 15, tzinfo=UTC
    )
    assert "No scheduler has run" in result.stderr

    table = cli("jobs", "list")
    assert table.exit_code == 0 and "ingest" in table.stdout and "dispatch" in table.stdout


def test_jobs_list_shows_the_job_stores_next_runs_and_the_leader_once_a_scheduler_ran(
    cli, engine: Engine, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    sunday_evening = datetime(2026, 11, 30, 1, 15, tzinfo=UTC)  # 20:15 in New York
    with time_machine.travel(sunday_evening, tick=False):
        scheduler = stepped_service(settings, engine, "host:1:abc")
        scheduler.start()
        result = cli("jobs", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {row["next_run_from"] for row in rows.values()} == {"job store"}
    # arXiv announces at 20:00 New York time on Sundays: ingest right after it.
    assert rows["ingest"]["next_run_utc"] == "2026-11-30T01:30:00+00:00"
    assert "Leader: host:1:abc" in result.stderr


def test_jobs_run_dispatch_sends_what_is_due_now_in_the_foreground(
    cli, engine: Engine, settings: Settings, batches: list[Path]
) -> None:  # type: ignore[no-untyped-def]
    at = datetime(2026, 11, 27, 6, 2, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        arrive(engine, batches[0])
        subscribe(engine, "berlin@example.org", "Europe/Berlin", "diffusion models")
        subscribe(engine, "tokyo@example.org", "Asia/Tokyo", "diffusion models")  # not now
        result = cli("jobs", "run", "dispatch")
    assert result.exit_code == 0, result.output
    assert "1 due" in result.stderr
    assert list(emails(settings)) == [("berlin@example.org", "2026-11-27")]


def test_jobs_run_an_unknown_job_names_the_jobs_and_exits_2(cli, isolated_env: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("jobs", "run", "backup")
    assert result.exit_code == 2
    assert "no job called 'backup'; jobs are: ingest, dispatch" in result.output


def test_a_changed_schedule_replaces_the_stored_job_but_an_unchanged_one_keeps_its_missed_run(
    engine: Engine, settings: Settings
) -> None:
    at = datetime(2026, 11, 27, 6, 1, tzinfo=UTC)
    with time_machine.travel(at, tick=False) as clock:
        first = stepped_service(settings, engine, "first")
        first.start()
        first.scheduler.shutdown()  # killed; the lease is simply left to expire
        clock.move_to(at + timedelta(minutes=30))
        again = stepped_service(settings, engine, "again")
        again.scheduler.start(paused=True)
        ensure_jobs(again.scheduler, settings)
        kept = again.scheduler.get_job("dispatch")
        assert kept is not None and kept.next_run_time == datetime(2026, 11, 27, 6, 5, tzinfo=UTC)
        ensure_jobs(again.scheduler, settings.model_copy(update={"dispatch_every_minutes": 10}))
        changed = again.scheduler.get_job("dispatch")
        assert changed is not None and changed.next_run_time == datetime(2026, 11, 27, 6, 40, tzinfo=UTC)
        again.scheduler.shutdown()
