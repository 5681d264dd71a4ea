"""The `newsletter` admin CLI: one Typer app, one module per command group.

Heavy imports (torch, the web stack) happen inside the commands that need them, so
`newsletter --help` and subscriber management start fast.
"""

from __future__ import annotations

import typer

from newsletter.cli import db, digest, doctor, jobs, operators, papers, ranking, subscribers, web

app = typer.Typer(
    name="newsletter",
    help=(
        "Personalised daily research-paper digests.\n\n"
        "Ingest the day's papers, rank them for each subscriber's interests, and email "
        "each person their digest. Start with `newsletter subscribers add` and "
        "`newsletter papers import`, then `newsletter send`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help and one-line `Error: …` messages
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(subscribers.app, name="subscribers")
app.add_typer(db.app, name="db")
app.add_typer(papers.app, name="papers")
papers.app.command("embed")(ranking.embed)
subscribers.app.command("vote")(ranking.vote)
app.command("recommend")(ranking.recommend)
app.add_typer(db.config_app, name="config")
app.add_typer(digest.app, name="digest")
app.add_typer(digest.deliveries_app, name="deliveries")
app.command("send")(digest.send)
app.command("stats")(digest.stats)
app.add_typer(jobs.app, name="jobs")
app.add_typer(operators.app, name="operators")
app.command("serve")(jobs.serve)
app.command("scheduler")(jobs.run_scheduler)
app.command("web")(web.web)
app.command("doctor")(doctor.doctor)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"newsletter {version('newsletter')}")
        raise typer.Exit()


@app.callback()
def _main(
    _show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


def main() -> None:
    """Entry point of the `newsletter` script and `python -m newsletter`."""
    app()
