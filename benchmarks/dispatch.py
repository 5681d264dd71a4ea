"""What one dispatch tick costs when nobody is due, for 10k / 100k subscribers.

The dispatch job runs every few minutes all day; almost every tick finds nothing to send.
This measures that steady state on SQLite: N active subscribers spread over 12 timezones and
all send hours, each with today's digest already recorded, then times `dispatch()` (which
loads the subscribers, works out each one's latest local send time, and finds the outbox row).

Run: .venv/bin/python benchmarks/dispatch.py [--subscribers 10000 100000]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from jobs.digest import dispatch
from jobs.schedule import SendSchedule, latest_occurrence
from newsletter.db import open_database
from newsletter.delivery.models import Delivery, DeliveryStatus
from newsletter.settings import Settings
from subscribers.models import Status, Subscriber

ZONES = [
    "UTC", "Europe/London", "Europe/Berlin", "Europe/Moscow", "Asia/Kolkata", "Asia/Shanghai",
    "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland", "America/Sao_Paulo",
    "America/New_York", "America/Los_Angeles",
]  # fmt: skip
NOW = datetime(2026, 11, 27, 12, 2, tzinfo=UTC)


def populate(settings: Settings, count: int) -> None:
    """`count` active subscribers, each with the digest of their latest occurrence recorded."""
    engine = open_database(settings)
    rng = random.Random(7)
    people, rows = [], []
    for i in range(1, count + 1):
        zone, hour = rng.choice(ZONES), rng.randrange(24)
        people.append(
            {
                "id": i, "email": f"p{i}@example.org", "email_key": f"p{i}@example.org",
                "status": Status.ACTIVE, "interests": ["x"], "timezone": zone, "send_hour": hour,
                "frequency": "daily", "weekday": 0, "max_papers": 10, "send_empty": False,
                "created_at": datetime(2026, 1, 1, tzinfo=UTC), "updated_at": NOW,
            }
        )  # fmt: skip
        occurrence = latest_occurrence(SendSchedule(zone, hour), NOW)
        assert occurrence is not None
        rows.append(
            {
                "subscriber_id": i, "digest_date": occurrence.digest_date,
                "status": DeliveryStatus.SENT, "attempts": 1,
                "created_at": NOW, "updated_at": NOW, "sent_at": NOW,
            }
        )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(Subscriber), people)
        conn.execute(insert(Delivery), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'subscribers':>12} {f'tick (best of {args.repeat})':>20} {'due':>5} {'peak RSS':>10}")
    for count in args.subscribers:
        with tempfile.TemporaryDirectory() as home:
            settings = Settings(home=Path(home), database_url=f"sqlite:///{home}/bench.db")
            populate(settings, count)
            best = float("inf")
            for _ in range(args.repeat):
                started = time.perf_counter()
                report = dispatch(settings, now=NOW)
                best = min(best, time.perf_counter() - started)
            due = sum(len(ids) for ids in report.due.values())
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{count:>12,} {best:>18.2f} s {due:>5} {rss:>8.0f} MB")


if __name__ == "__main__":
    main()
