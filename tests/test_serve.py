"""`newsletter serve` and `newsletter scheduler` as real processes: start, lead, stop on a signal.

These run the installed entry point in a child process (the way Docker and systemd run it)
against a SQLite data folder, bind 127.0.0.1 only, and are bounded by deadlines.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from jobs import lease
from newsletter.db import engine_for
from tests.support.requirements import ROOT

DEADLINE = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[str]) -> None:
    """Poll `condition` until it holds, the child dies, or the deadline passes."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"process exited ({process.returncode}) before {what}: {process.stderr.read()}")  # type: ignore[union-attr]
        if condition():
            return
        time.sleep(0.2)  # waiting for another process, not for time to pass
    pytest.fail(f"timed out waiting for {what}")


def _lease(home: Path) -> tuple[str, float] | None:
    """(holder, expiry as a timestamp) of the scheduler lease in `home`'s database."""
    engine = engine_for(f"sqlite:///{(home / 'newsletter.db').resolve()}")
    if not sa.inspect(engine).has_table("scheduler_lease"):
        return None
    held = lease.current(engine)
    return None if held is None else (held.holder, held.expires_at.timestamp())


@pytest.fixture
def child(isolated_env: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "NEWSLETTER_HOME": str(isolated_env), "TZ": "UTC"}
        process = subprocess.Popen(
            [sys.executable, "-m", "newsletter", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def _scheduler_leads(home: Path) -> Callable[[], bool]:
    def check() -> bool:
        held = _lease(home)
        return held is not None and held[1] > time.time()

    return check


def test_serve_answers_healthz_runs_the_scheduler_and_stops_cleanly_on_sigterm(
    child, isolated_env: Path
) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    process = child("serve", "--host", "127.0.0.1", "--port", str(port))

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    _wait_for(healthy, "/healthz to answer 200", process)
    _wait_for(_scheduler_leads(isolated_env), "the scheduler to take the lease", process)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=DEADLINE) == 0, process.stderr.read()  # type: ignore[union-attr]
    held = _lease(isolated_env)
    assert held is not None and held[1] <= time.time(), "the lease was not handed back"


def test_the_scheduler_stops_on_ctrl_c_and_a_standby_waits_while_it_leads(child, isolated_env: Path) -> None:  # type: ignore[no-untyped-def]
    leader = child("scheduler")
    _wait_for(_scheduler_leads(isolated_env), "the first scheduler to lead", leader)
    first_holder = _lease(isolated_env)[0]  # type: ignore[index]

    standby = child("scheduler")
    _wait_for(lambda: "Standing by" in (standby.stderr.readline() or ""), "the standby to start", standby)
    assert _lease(isolated_env)[0] == first_holder  # type: ignore[index]

    leader.send_signal(signal.SIGINT)
    assert leader.wait(timeout=DEADLINE) == 0, leader.stderr.read()  # type: ignore[union-attr]
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(timeout=DEADLINE) == 0, standby.stderr.read()  # type: ignore[union-attr]
