"""An APScheduler scheduler that runs on the test's clock instead of its own thread.

`step()` is APScheduler's own job processing (due jobs from the SQLAlchemy job store,
coalescing, misfire handling, next-run bookkeeping), run once, in the test's thread, at
whatever time time-machine says it is. Jobs run inline (the service's own executor, in the
leader's tenure) and any exception a job raises is kept in `errors`, so a failing job fails
the test instead of only being logged.
"""

from __future__ import annotations

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import Engine

from jobs.scheduler import SchedulerService
from newsletter.settings import Settings


class SteppedScheduler(BaseScheduler):
    """No thread, no sleeping: the test decides when the scheduler looks at the clock."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.errors: list[BaseException] = []
        self.add_listener(self._keep_error, EVENT_JOB_ERROR)

    def _keep_error(self, event: JobExecutionEvent) -> None:
        self.errors.append(event.exception)

    def wakeup(self) -> None:
        """Nothing to wake: `step()` is called by the test."""

    def shutdown(self, wait: bool = True) -> None:
        """Stop as BaseScheduler does (there is no thread to join)."""
        super().shutdown(wait)

    def step(self) -> None:
        """Run every job that is due now (a paused scheduler runs nothing)."""
        self._process_jobs()
        if self.errors:
            raise self.errors[0]


def stepped_service(settings: Settings, engine: Engine, holder: str) -> SchedulerService:
    """A SchedulerService as `newsletter scheduler` builds it, but stepped by the test."""
    service = SchedulerService(
        settings, scheduler_class=SteppedScheduler, inline_jobs=True, holder=holder, heartbeat_thread=False
    )
    assert service.engine is engine
    return service
