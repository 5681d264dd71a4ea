"""`newsletter doctor`: is this configuration ready to send real mail to real readers?

Each check reads the settings (and, for the schema, the database) and names what is wrong in
one line with the setting to change; the command exits 1 when any problem is found, so it can
guard a deploy script. The checks are a list of functions: adding one is one function and one
line in CHECKS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from email.utils import parseaddr
from urllib.parse import urlsplit

import typer

from newsletter.cli.common import FormatOption, console
from newsletter.cli.output import Format, emit
from newsletter.errors import UserError
from newsletter.settings import Settings, get_settings

Check = Callable[[Settings], Iterator[str]]


def _loopback(host: str) -> bool:
    if host in {"localhost", "localhost.localdomain"} or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified or address.is_link_local


def transport(settings: Settings) -> Iterator[str]:
    """The transport exists, has its keys, and really emails."""
    from newsletter.delivery.transports import get_transport

    try:
        get_transport(settings).close()
    except UserError as exc:
        yield exc.message
        return
    if settings.transport == "file":
        yield (
            "NEWSLETTER_TRANSPORT is file: digests are written to HOME/outbox and nobody gets "
            "email; set it to smtp or sendgrid"
        )
    if settings.transport == "sendgrid" and settings.sendgrid_sandbox:
        yield "NEWSLETTER_SENDGRID_SANDBOX is on: SendGrid accepts every message and delivers none"


def base_url(settings: Settings) -> Iterator[str]:
    """Links in emails point at a public https address."""
    parts = urlsplit(settings.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        yield f"NEWSLETTER_BASE_URL={settings.base_url!r} is not an http(s) URL; e.g. https://digest.example.org"
        return
    if _loopback(parts.hostname):
        yield (
            f"NEWSLETTER_BASE_URL={settings.base_url} points at this machine: every link in an email "
            "(unsubscribe, confirm) would fail for readers; set the public address, e.g. https://digest.example.org"
        )
    elif parts.scheme != "https":
        yield "NEWSLETTER_BASE_URL is http: links carry personal tokens; serve the site over https"


def sender(settings: Settings) -> Iterator[str]:
    """The From address is a real address of a real domain, and the footer has a postal address."""
    _, address = parseaddr(settings.from_address)
    domain = address.rpartition("@")[2].lower()
    if "@" not in address or not domain:
        yield f"NEWSLETTER_FROM={settings.from_address!r} has no address; e.g. 'Paper Digest <digest@example.org>'"
    elif domain == "localhost" or "." not in domain or _loopback(domain):
        yield f"NEWSLETTER_FROM uses {domain!r}: mail from it is rejected; use an address of your own domain"
    if not (settings.postal_address or "").strip():
        yield "NEWSLETTER_POSTAL_ADDRESS is empty: bulk mail must show the sender's postal address (CAN-SPAM)"


def webhook(settings: Settings) -> Iterator[str]:
    """With SendGrid, bounces and complaints come back through the signed event webhook."""
    from newsletter.delivery.transports.sendgrid_webhook import Verifier

    try:
        Verifier(settings)
    except UserError as exc:
        yield exc.message
        return
    key = settings.sendgrid_webhook_public_key
    if settings.transport == "sendgrid" and (key is None or not key.get_secret_value().strip()):
        yield (
            "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is empty: bounces and spam complaints will not stop "
            "mail; turn on SendGrid's Signed Event Webhook and paste its verification key"
        )


def database(settings: Settings) -> Iterator[str]:
    """A PostgreSQL database answers and its schema is current (SQLite migrates itself)."""
    from newsletter.db import engine_for, pending_migrations

    if settings.resolved_database_url.startswith("sqlite"):
        return
    try:
        if pending_migrations(engine_for(settings.resolved_database_url)):
            yield "the database schema is not up to date: run `newsletter db upgrade`"
    except UserError as exc:
        yield exc.message
    except Exception as exc:  # a driver's own error: one line, not a traceback
        yield f"the database does not answer: {str(exc).splitlines()[0]}"


#: Every check, in the order the README's "Going live" takes them.
CHECKS: tuple[Check, ...] = (transport, base_url, sender, webhook, database)


def problems(settings: Settings) -> list[dict[str, str]]:
    """Every problem found, as {check, problem}."""
    return [{"check": check.__name__, "problem": line} for check in CHECKS for line in check(settings)]


def doctor(fmt: FormatOption = Format.TABLE) -> None:
    """Check that the settings are ready for a live service; one line per problem.

    Looks at the transport and its keys, NEWSLETTER_BASE_URL (public, https), the From and
    postal addresses, SendGrid's webhook key, and the database schema. Exits 1 when anything
    is wrong, 0 when all is ready. Run it after every configuration change.

    Examples:

      newsletter doctor

      newsletter doctor --format json
    """
    found = problems(get_settings())
    if fmt != Format.TABLE:
        emit(found, fmt, ["check", "problem"])
    else:
        for row in found:
            typer.echo(f"✗ {row['problem']}")
    if found:
        console.print(
            f"{len(found)} problem{'s' if len(found) != 1 else ''}; fix and run `newsletter doctor` again."
        )
        raise typer.Exit(1)
    console.print(f"All {len(CHECKS)} checks passed: ready to send.")
