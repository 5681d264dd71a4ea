"""The scheduler lease: one leader per database, renewals, expiry and hand-over."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import Engine

from jobs import lease

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
