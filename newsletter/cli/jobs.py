"""`newsletter serve`, `newsletter scheduler` and `newsletter jobs list|run`.

`serve` is what the Docker image runs: the web app and the scheduler in one process.
`scheduler` runs the jobs only (e.g. beside a separately scaled web tier). Any number of
either may point at one database: a lease lets exactly one of them run the jobs.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import typer
from rich.logging import RichHandler

from newsletter.cli.common import FormatOption, console, warn_about_links
from newsletter.cli.output import Format, emit
from newsletter.db import open_database
from newsletter.dbtypes import utcnow
from newsletter.errors import UserError
from newsletter.settings import get_settings

app = typer.Typer(help="The scheduled jobs (ingest, dispatch): list them, run one now.", no_args_is_help=True)

LIST_COLUMNS = ["name", "when", "next_run_utc", "next_run_local", "next_run_from"]


def _log_to_stderr() -> None:
    """Readable, timestamped logs on stderr for the long-running commands."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=True)],
        force=True,
    )
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 in a container).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port of the web app.")] = 8000,
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Also run the scheduled jobs.")
    ] = True,
) -> None:
    """Run the web app and the scheduler in one process (what the Docker image runs).

    Stops cleanly on Ctrl-C or SIGTERM: the web server drains, a running job finishes,
    and the scheduler lease is released for a standby.
    """
    import uvicorn

    from jobs.scheduler import SchedulerService
    from newsletter.web import create_app

    _log_to_stderr()
    settings = get_settings()
    warn_about_links(settings, host, port)
    web = create_app(settings)
    service = SchedulerService(settings) if scheduler else None
    # uvicorn drains on SIGINT/SIGTERM, then re-raises the signal to the handler it found:
    # make that one a no-op, so the scheduler below still stops and releases its lease.
    _on_stop_signal()
    if service is not None:
        service.start()
    try:
        uvicorn.Server(uvicorn.Config(web, host=host, port=port, log_config=None)).run()
    finally:
        if service is not None:
            service.stop()


def _on_stop_signal(on_signal: Callable[[], None] = lambda: None) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: on_signal())


def run_scheduler() -> None:
    """Run the scheduled jobs only, until Ctrl-C or SIGTERM.

    Several schedulers may share one database: one leads (runs jobs), the others stand by
    and take over within NEWSLETTER_SCHEDULER_LEASE_SECONDS if it stops.
    """
    from jobs.scheduler import SchedulerService

    _log_to_stderr()
    service = SchedulerService(get_settings())
    stop = threading.Event()
    _on_stop_signal(stop.set)
    service.start()
    role = "Leading: running the jobs" if service.is_leader else "Standing by: another scheduler leads"
    console.print(f"{role} (this is {service.holder}; Ctrl-C stops).")
    stop.wait()
    console.print("Stopping: letting running jobs finish…")
    service.stop()


@app.command("list")
def list_(fmt: FormatOption = Format.TABLE) -> None:
    """Each job, its trigger and its next run in UTC and local time.

    Works before any scheduler has run (next runs then come from the triggers).
    """
    from jobs import lease
    from jobs.scheduler import list_jobs

    settings = get_settings()
    engine = open_database(settings)
    stamp = (lambda t: f"{t:%Y-%m-%d %H:%M %Z}") if fmt == Format.TABLE else datetime.isoformat
    rows = [
        {
            "name": row.name,
            "function": row.function,
            "when": row.when,
            "trigger": row.trigger,
            "next_run_utc": stamp(row.next_run),
            "next_run_local": stamp(row.next_run.astimezone()),
            "next_run_from": "job store" if row.scheduled else "trigger",
            "description": row.description,
        }
        for row in list_jobs(settings, engine, utcnow())
    ]
    emit(rows, fmt, LIST_COLUMNS, title="Scheduled jobs")
    held = lease.current(engine)
    if held is None:
        console.print("No scheduler has run on this database yet.")
    elif held.expires_at > utcnow():
        console.print(f"Leader: {held.holder} (lease until {_when(held.expires_at)}).")
    else:
        console.print(f"No scheduler leads now (last: {held.holder}, until {_when(held.expires_at)}).")


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="ingest or dispatch.")],
) -> None:
    """Run one job now, in the foreground, whatever the schedule or the lease says.

    dispatch sends only digests that are due now (it is safe to run at any time: nothing
    is ever sent twice); ingest pulls every enabled source and embeds the new papers.
    """
    from jobs.scheduler import JOBS, job_spec

    try:
        spec = job_spec(name)
    except KeyError:
        names = ", ".join(spec.name for spec in JOBS)
        raise UserError(f"no job called {name!r}; jobs are: {names}") from None
    _log_to_stderr()
    settings = get_settings()
    if spec.name == "ingest":
        embedded = 0

        def progress(count: int) -> None:
            nonlocal embedded
            embedded += count
            status.update(f"embedding new papers: {embedded} done")

        with console.status("ingesting…") as status:
            report = spec.function()(settings, progress=progress)
    else:
        with console.status("dispatching…"):
            report = spec.function()(settings)
    console.print(report.summary())
