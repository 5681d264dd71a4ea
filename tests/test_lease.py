"""The scheduler lease: one leader per database, renewals, expiry and hand-over; a leader
that cannot renew stands by at once, and work it started is fenced by the lease."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from jobs import lease
from newsletter.delivery.models import DeliveryStatus
from newsletter.settings import Settings
from tests.support.outbox import is_claim, mentions, on_statement, record_digests, rows
from tests.support.scheduler import stepped_service

TTL = timedelta(seconds=90)
T0 = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def test_the_first_scheduler_leads_and_a_second_one_waits(engine: Engine) -> None:
    assert lease.acquire(engine, "a", TTL, now=T0)
    assert not lease.acquire(engine, "b", TTL, now=T0 + timedelta(seconds=1))
    held = lease.current(engine)
    assert held is not None and held.holder == "a"


def test_the_leader_keeps_the_lease_by_renewing_it(engine: Engine) -> None:
    assert lease.acquire(engine, "a", TTL, now=T0)
    for minute in range(1, 30):
        assert lease.acquire(engine, "a", TTL, now=T0 + timedelta(minutes=minute))
        assert not lease.acquire(engine, "b", TTL, now=T0 + timedelta(minutes=minute, seconds=1))
    held = lease.current(engine)
    assert held is not None
    assert held.acquired_at == T0  # one unbroken tenure
    assert held.expires_at == T0 + timedelta(minutes=29) + TTL


def test_a_standby_takes_over_once_the_leader_stops_renewing(engine: Engine) -> None:
    assert lease.acquire(engine, "a", TTL, now=T0)
    assert not lease.acquire(engine, "b", TTL, now=T0 + TTL - timedelta(seconds=1))
    assert lease.acquire(engine, "b", TTL, now=T0 + TTL)
    assert not lease.acquire(engine, "a", TTL, now=T0 + TTL + timedelta(seconds=1))
    held = lease.current(engine)
    assert held is not None and (held.holder, held.acquired_at) == ("b", T0 + TTL)


def test_a_released_lease_is_taken_at_once(engine: Engine) -> None:
    with time_machine.travel(T0, tick=False):
        assert lease.acquire(engine, "a", TTL)
        lease.release(engine, "a")
        assert lease.acquire(engine, "b", TTL)


def test_releasing_a_lease_one_does_not_hold_changes_nothing(engine: Engine) -> None:
    with time_machine.travel(T0, tick=False):
        assert lease.acquire(engine, "a", TTL)
        lease.release(engine, "b")
        assert not lease.acquire(engine, "b", TTL)


@pytest.mark.parametrize("previous_holder", [None, "crashed"], ids=["new", "expired"])
def test_of_many_schedulers_racing_for_a_free_lease_exactly_one_wins(
    engine: Engine, previous_holder: str | None
) -> None:
    if previous_holder:
        assert lease.acquire(engine, previous_holder, TTL, now=T0 - 2 * TTL)
    contenders = 6
    start = threading.Barrier(contenders)
    wins: list[str] = []

    def contend(name: str) -> None:
        start.wait(timeout=30)
        if lease.acquire(engine, name, TTL, now=T0):
            wins.append(name)

    threads = [threading.Thread(target=contend, args=(f"s{i}",)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(wins) == 1
    held = lease.current(engine)
    assert held is not None and held.holder == wins[0]


# --- a leader that cannot renew (issue 11, item 13) -------------------------------------------


def _lease_writes_fail_for(holder: str):  # type: ignore[no-untyped-def]
    """Every lease statement of `holder` raises, as if its database connection had died."""

    def fail(statement: str, parameters: object) -> None:
        if "scheduler_lease" in statement and mentions(parameters, holder):
            raise OperationalError(statement, parameters, ConnectionError("server closed the connection"))

    return fail


def test_a_leader_that_cannot_renew_stops_running_jobs_at_once_and_is_never_a_second_leader(
    engine: Engine, settings: Settings
) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        leader = stepped_service(settings, engine, "leader")
        standby = stepped_service(settings, engine, "standby")
        leader.start()
        standby.start()
        assert (leader.is_leader, standby.is_leader) == (True, False)
        with on_statement(engine, _lease_writes_fail_for("leader")):
            for second in range(0, 4 * settings.scheduler_lease_seconds, 10):
                clock.move_to(T0 + timedelta(seconds=second))
                assert not leader.heartbeat()  # it cannot prove it leads: it stands by
                standby.heartbeat()
                assert not leader.is_leader
                assert standby.is_leader == (second >= settings.scheduler_lease_seconds)
        leader.stop()
        standby.stop()


def test_a_dispatch_that_outlives_its_leaders_lease_sends_nothing_more(
    engine: Engine, settings: Settings
) -> None:
    """The leader's lease runs out while its dispatch is between rendering and claiming; the
    new leader sends that digest, the old one sends nothing (its claims are fenced)."""
    due = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    ids = record_digests(engine, 1, due)
    with time_machine.travel(due + timedelta(minutes=1), tick=False) as clock:
        leader = stepped_service(settings, engine, "leader")
        standby = stepped_service(settings, engine, "standby")
        leader.start()
        standby.start()
        taken_over = []

        def lease_runs_out(statement: str, parameters: object) -> None:
            if not taken_over and is_claim(statement, parameters):
                clock.move_to(due + timedelta(minutes=5) + TTL + timedelta(seconds=1))
                taken_over.append(standby.heartbeat())

        clock.move_to(due + timedelta(minutes=5))
        leader.heartbeat()
        with on_statement(engine, lease_runs_out):
            leader.scheduler.step()  # type: ignore[attr-defined]
        assert taken_over == [True]
        clock.move_to(due + timedelta(minutes=10))
        standby.heartbeat()
        standby.scheduler.step()  # type: ignore[attr-defined]
        standby.stop()

    (row,) = rows(engine).values()
    assert row.id == ids["reader0@example.org"] and row.status == DeliveryStatus.SENT
    assert row.sent_at == due + timedelta(minutes=10)  # by the new leader, not the old one
    assert len(list((settings.home / "outbox").rglob("*.eml"))) == 1


def _holds(engine: Engine, tenure: lease.Tenure) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(select(lease.fence(tenure)())).scalar())


def test_every_takeover_starts_a_new_generation_and_renewals_keep_it(engine: Engine) -> None:
    first = lease.acquire(engine, "a", TTL, now=T0)
    assert first == lease.Tenure("a", 1)
    assert lease.acquire(engine, "a", TTL, now=T0 + timedelta(seconds=30)) == first
    assert lease.acquire(engine, "b", TTL, now=T0 + 2 * TTL) == lease.Tenure("b", 2)
    assert lease.acquire(engine, "a", TTL, now=T0 + 4 * TTL) == lease.Tenure("a", 3)
    held = lease.current(engine)
    assert held is not None and (held.holder, held.generation) == ("a", 3)


def test_a_fence_holds_only_for_its_own_unexpired_tenure(engine: Engine) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        a1 = lease.acquire(engine, "a", TTL)
        assert a1 is not None and _holds(engine, a1)
        assert not _holds(engine, lease.Tenure("b", a1.generation))  # someone else's name
        clock.move_to(T0 + TTL)  # expired, even before anyone takes over
        assert not _holds(engine, a1)
        b2 = lease.acquire(engine, "b", TTL)
        assert b2 is not None and _holds(engine, b2) and not _holds(engine, a1)
        clock.move_to(T0 + 3 * TTL)
        a3 = lease.acquire(engine, "a", TTL)
        assert a3 is not None and _holds(engine, a3)
        assert not _holds(engine, a1)  # the same holder's earlier tenure stays fenced out
        other = lease.acquire(engine, "x", TTL, name="other")  # another lease's holder
        assert other is not None and not _holds(engine, other)


def test_releasing_one_lease_keeps_the_holders_other_leases(engine: Engine) -> None:
    with time_machine.travel(T0, tick=False):
        assert lease.acquire(engine, "a", TTL)
        assert lease.acquire(engine, "a", TTL, name="other")
        lease.release(engine, "a", name="other")
        assert not lease.acquire(engine, "b", TTL)
        assert lease.acquire(engine, "b", TTL, name="other")
