"""Errors that carry a message meant for a person.

`UserError` is bad input or a fixable setup problem. It is a click `ClickException`, so the
CLI prints it as one `Error: …` line on stderr and exits 2 (the code click uses for usage
errors) with no traceback, in the real CLI and in tests alike; the web layer turns it into a
4xx with the same message. Everything else is a bug and keeps its traceback.
"""

try:  # Typer ≥ 0.22 ships its own copy of click; its commands only catch that copy's class.
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older Typer runs on the real click
    from click import ClickException  # type: ignore[assignment]


class UserError(ClickException):
    """Bad input or configuration, explained in one line that says how to fix it."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
