"""The scheduler: APScheduler 3 with its job store in our database, led through a lease.

- Jobs are stored by text reference (`jobs.digest:dispatch`), so the job store survives
  restarts and upgrades; what a job does lives in code, not in pickled state.
- Jobs found in the store are kept as they are when their definition did not change, so a
  run that was due while the process was down is still there to fire (coalesced to one)
  on start; a changed definition (other settings) replaces the stored job.
- Every scheduler starts paused and only runs jobs while it holds the database lease
  (jobs/lease.py); a heartbeat thread renews it and pauses or resumes the scheduler. A
  renewal that fails (the database is unreachable) pauses it at once: a leader that cannot
  prove it leads stands by, before its lease can expire and a standby take over.
- Jobs run in the tenure of the lease they were started under (`LeaderExecutor`), and the
  outbox fences every claim with it, so a job that outlives its leader's lease sends nothing
  more once another scheduler leads.
- `stop()` lets a running job finish (APScheduler's `shutdown(wait=True)`) and releases
  the lease so a standby can take over at once. Whatever a hard kill interrupts, the
  outbox and `dispatch` pick up from the database on the next start.
"""

from __future__ import annotations

import concurrent.futures
import logging
import sys
import threading
from collections.abc import Callable
from contextvars import copy_context
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.util import ref_to_obj
from sqlalchemy import Engine, column, inspect, select, table

from jobs import lease
from newsletter.db import open_database, owner_id
from newsletter.settings import Settings

log = logging.getLogger("newsletter.jobs.scheduler")

#: APScheduler's own table (created by its job store; excluded from our migrations).
JOBS_TABLE = "apscheduler_jobs"

#: arXiv announces new submissions at 20:00 US Eastern, Sunday to Thursday.
ARXIV_ANNOUNCES = {
    "day_of_week": "sun,mon,tue,wed,thu",
    "hour": 20,
    "minute": 30,
    "timezone": "America/New_York",
}


@dataclass(frozen=True)
class JobSpec:
    """One job of the service: its name, the function by text reference, when it runs."""

    name: str
    func: str
    description: str
    trigger: Callable[[Settings], BaseTrigger]
    when: Callable[[Settings], str]  # the trigger in words, for people

    def function(self) -> Callable[..., Any]:
        """The function the reference points to (what `jobs run` and the scheduler call)."""
        return ref_to_obj(self.func)


def _dispatch_trigger(settings: Settings) -> BaseTrigger:
    # On the wall clock (:00, :05, …) so a 07:00 digest leaves at 07:00, not 07:03.
    return CronTrigger(minute=f"*/{settings.dispatch_every_minutes}", timezone=UTC)


def _ingest_trigger(settings: Settings) -> BaseTrigger:
    # Right after arXiv's daily announcement, and through the day for Hugging Face Daily
    # Papers (which fills up as people submit); each run pulls every enabled source.
    return OrTrigger(
        [
            CronTrigger(**ARXIV_ANNOUNCES),
            CronTrigger(hour=f"*/{settings.ingest_every_hours}", minute=10, timezone=UTC),
        ]
    )


JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        "ingest",
        "jobs.ingest:ingest",
        "pull every enabled source, then embed the new papers",
        _ingest_trigger,
        lambda s: f"every {s.ingest_every_hours} h at :10 UTC; 20:30 New York Sun-Thu",
    ),
    JobSpec(
        "dispatch",
        "jobs.digest:dispatch",
        "send each digest whose local send time has come",
        _dispatch_trigger,
        lambda s: f"every {s.dispatch_every_minutes} min",
    ),
)


def job_spec(name: str) -> JobSpec:
    """The job called `name` (KeyError lists nothing; the CLI turns it into a UserError)."""
    return {spec.name: spec for spec in JOBS}[name]


class LeaderExecutor(BaseExecutor):
    """Runs each job with the tenure it was started under in `lease.LEADING` (on a small
    thread pool, or inline where a test steps the scheduler), and no job without one.

    APScheduler's own executors cannot carry a context into the job's thread; this is its
    documented way to add one (`_do_submit_job` + `run_job`)."""

    def __init__(self, tenure: Callable[[], lease.Tenure | None], *, inline: bool = False, workers: int = 2):
        super().__init__()
        self._tenure = tenure
        self._inline = inline
        self._pool = None if inline else concurrent.futures.ThreadPoolExecutor(workers, "scheduler-job")

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        tenure = self._tenure()
        if tenure is None:  # the lease was lost between the scheduler's check and now
            self._logger.warning("job %s not started: this scheduler no longer leads", job.id)
            self._run_job_success(job.id, [])
            return
        context = copy_context()
        context.run(lease.LEADING.set, tenure)
        args = (job, job._jobstore_alias, run_times, self._logger.name)
        if self._pool is None:
            try:
                events = context.run(run_job, *args)
            except BaseException:
                self._run_job_error(job.id, *sys.exc_info()[1:])
            else:
                self._run_job_success(job.id, events)
            return
        future = self._pool.submit(context.run, run_job, *args)
        future.add_done_callback(lambda done: self._finished(job.id, done))

    def _finished(self, job_id: str, future: concurrent.futures.Future[Any]) -> None:
        if (exc := future.exception()) is not None:
            self._run_job_error(job_id, exc, exc.__traceback__)
        else:
            self._run_job_success(job_id, future.result())

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait)


def build_scheduler(
    settings: Settings,
    engine: Engine,
    *,
    scheduler_class: type[BaseScheduler] = BackgroundScheduler,
    executor: BaseExecutor,
) -> BaseScheduler:
    """An APScheduler scheduler whose job store is our database (not started)."""
    return scheduler_class(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
        executors={"default": executor},
        job_defaults={
            "coalesce": True,  # runs missed while down collapse into one
            "max_instances": 1,  # a slow run is never overlapped by the next
            # APScheduler's own misfire window: the dispatch job itself decides per digest
            # (send within the grace period, else record it missed), so give it as long.
            "misfire_grace_time": settings.dispatch_grace_minutes * 60,
        },
        timezone=UTC,
    )


class SchedulerService:
    """A scheduler process's life: start paused, lead while holding the lease, stop cleanly."""

    def __init__(
        self,
        settings: Settings,
        *,
        scheduler_class: type[BaseScheduler] = BackgroundScheduler,
        inline_jobs: bool = False,
        holder: str | None = None,
        heartbeat_thread: bool = True,
    ) -> None:
        self.settings = settings
        self.engine = open_database(settings)
        self.holder = holder or owner_id()
        self.tenure: lease.Tenure | None = None  # set while this scheduler holds the lease
        executor = LeaderExecutor(lambda: self.tenure, inline=inline_jobs)
        self.scheduler = build_scheduler(
            settings, self.engine, scheduler_class=scheduler_class, executor=executor
        )
        self.ttl = timedelta(seconds=settings.scheduler_lease_seconds)
        self._heartbeat_thread = heartbeat_thread
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        """Whether this scheduler is running jobs (it holds the lease)."""
        return self.scheduler.state == STATE_RUNNING

    def start(self) -> None:
        """Start paused, make sure the jobs exist, then lead if the lease is free."""
        self.scheduler.start(paused=True)
        ensure_jobs(self.scheduler, self.settings)
        self.heartbeat()
        if self._heartbeat_thread:
            self._thread = threading.Thread(target=self._beat, name="scheduler-lease", daemon=True)
            self._thread.start()

    def heartbeat(self) -> bool:
        """Take or renew the lease; resume when leading, pause when another leads or when
        the renewal fails (never raises: the heartbeat thread must keep beating)."""
        try:
            self.tenure = lease.acquire(self.engine, self.holder, self.ttl)
        except Exception:
            log.exception("scheduler %s cannot renew its lease: standing by", self.holder)
            self.tenure = None
        leader = self.tenure is not None
        if leader and self.scheduler.state == STATE_PAUSED:
            log.info("scheduler %s leads: running jobs", self.holder)
            self.scheduler.resume()
        elif not leader and self.scheduler.state == STATE_RUNNING:
            log.warning("scheduler %s lost the lease: standing by", self.holder)
            self.scheduler.pause()
        return leader

    def _beat(self) -> None:
        interval = self.ttl.total_seconds() / 3
        while not self._stopping.wait(interval):
            self.heartbeat()

    def stop(self, *, wait: bool = True) -> None:
        """Let running jobs finish, stop, and hand the lease over."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self.scheduler.shutdown(wait=wait)
        lease.release(self.engine, self.holder)
        log.info("scheduler %s stopped", self.holder)


def ensure_jobs(scheduler: BaseScheduler, settings: Settings) -> None:
    """Add missing jobs and replace changed ones; keep unchanged ones with their next run."""
    grace = settings.dispatch_grace_minutes * 60
    for spec in JOBS:
        trigger = spec.trigger(settings)
        stored = scheduler.get_job(spec.name)
        if (
            stored is not None
            and stored.func_ref == spec.func
            and repr(stored.trigger) == repr(trigger)  # repr includes the timezones
            and stored.misfire_grace_time == grace
        ):
            continue
        scheduler.add_job(
            spec.func, trigger, id=spec.name, name=spec.name, replace_existing=True,
            misfire_grace_time=grace,
        )  # fmt: skip


@dataclass(frozen=True)
class JobRow:
    """One line of `newsletter jobs list`."""

    name: str
    function: str
    trigger: str
    when: str
    next_run: datetime
    scheduled: bool  # True: the stored next run of a scheduler; False: from the trigger
    description: str


def list_jobs(settings: Settings, engine: Engine, now: datetime) -> list[JobRow]:
    """Every job with its next run: as stored by a scheduler, else computed from its trigger.

    Reads the job store's table directly (read-only, without unpickling jobs), so it works
    on a fresh data folder where no scheduler has ever run and while a scheduler runs.
    """
    stored = _stored_next_runs(engine)
    rows = []
    for spec in JOBS:
        trigger = spec.trigger(settings)
        next_run = stored.get(spec.name)
        rows.append(
            JobRow(
                name=spec.name,
                function=spec.func,
                trigger=repr(trigger),
                when=spec.when(settings),
                next_run=next_run or trigger.get_next_fire_time(None, now),
                scheduled=next_run is not None,
                description=spec.description,
            )
        )
    return rows


def _stored_next_runs(engine: Engine) -> dict[str, datetime]:
    if not inspect(engine).has_table(JOBS_TABLE):
        return {}
    jobs = table(JOBS_TABLE, column("id"), column("next_run_time"))
    with engine.connect() as conn:
        return {
            job_id: datetime.fromtimestamp(ts, UTC)
            for job_id, ts in conn.execute(select(jobs.c.id, jobs.c.next_run_time))
            if ts is not None
        }
