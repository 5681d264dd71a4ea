"""`newsletter operators …`: the people who may log in to the admin web app (/admin).

There is no default account: the first operator is created here, on the server, by someone
who can already run the CLI (and so read the database anyway).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Annotated

import typer

from newsletter import operators
from newsletter.cli.common import FormatOption, console, database
from newsletter.cli.output import Format, emit
from newsletter.errors import UserError

app = typer.Typer(
    help="Accounts for the admin web app (/admin): add, list, set a password, remove.",
    no_args_is_help=True,
)

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (for scripts); "
        "otherwise it is asked for twice, hidden.",
    ),
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UserError("--password-stdin: standard input has no password line")
        return operators.check_password(line)
    entered: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return operators.check_password(entered)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name: letters, digits, . _ @ -")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an operator who can log in at BASE_URL/admin.

    Passwords have at least 12 characters and are stored as Argon2id hashes. After 5 wrong
    passwords in a row an account is locked for 15 minutes.

    Examples:

      newsletter operators add alice

      echo "$ADMIN_PASSWORD" | newsletter operators add alice --password-stdin
    """
    clean = operators.normalise_name(name)
    with database() as session:
        if operators.find(session, clean) is not None:
            raise UserError(f"an operator named {clean!r} exists already")
    password = _password(password_stdin)
    with database() as session:
        operators.create(session, clean, password)
    console.print(f"Added operator {clean}; log in at /admin.")


@app.command("list")
def list_(fmt: FormatOption = Format.TABLE) -> None:
    """List operators with their last login and any lock-out."""
    with database() as session:
        rows = [asdict(o) for o in operators.listing(session)]
    emit(rows, fmt, ["name", "created_at", "last_login_at", "locked_until"], title=f"{len(rows)} operators")


@app.command("password")
def password(
    name: Annotated[str, typer.Argument(help="The operator's login name.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password: also lifts a lock-out and logs the operator out everywhere."""
    with database() as session:
        operators.require(session, name)
    new = _password(password_stdin)
    with database() as session:
        operators.set_password(session, operators.require(session, name), new)
    console.print(f"New password set for {name.strip().lower()}; their sessions are ended.")


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The operator's login name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an operator (their open sessions stop working at once)."""
    with database() as session:
        operator = operators.require(session, name)
        if not yes and not typer.confirm(f"Remove operator {operator.name}?"):
            raise typer.Abort()
        session.delete(operator)
    console.print(f"Removed operator {name.strip().lower()}.")
