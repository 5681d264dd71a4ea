"""One interface for every way a message leaves: `file`, `smtp`, `sendgrid`.

A transport takes a batch of messages and yields one result per message as it completes.
Right before it hands a message to the provider it calls `claim(message)`; the outbox uses
that to mark the delivery `sending` at the last possible moment, so after a crash only the
requests that were really in flight are in doubt. A claim that returns False (another run
took the row) skips the message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from types import TracebackType

from newsletter.errors import UserError
from newsletter.registry import Registry
from newsletter.settings import Settings


@dataclass(frozen=True)
class Outgoing:
    """A message to send; `key` is the delivery id (the only id a provider sees)."""

    key: int
    message: EmailMessage
    digest_date: date


@dataclass(frozen=True)
class SendResult:
    """What happened to one message.

    `attempted` is False when nothing reached the provider (the run stopped first), so the
    outbox can put the delivery back to pending instead of failing it.
    """

    key: int
    ok: bool
    provider_id: str | None = None
    error: str | None = None
    attempts: int = 1
    attempted: bool = True


class TransportStopped(UserError):
    """Every further message would fail (bad key, unverified sender): stop the run."""


def _always(_message: Outgoing) -> bool:
    return True


class Transport(ABC):
    """Sends batches of messages; a context manager so connections are closed."""

    name: str

    @abstractmethod
    def __init__(self, settings: Settings) -> None:
        """Configure from settings; a missing key is a UserError here, before anything is written."""

    @abstractmethod
    def send(
        self, batch: Sequence[Outgoing], claim: Callable[[Outgoing], bool] = _always
    ) -> Iterator[SendResult]:
        """Send `batch`, yielding a result per claimed message as each completes."""

    def close(self) -> None:  # noqa: B027  (optional hook: most transports hold nothing)
        """Release connections and threads (default: nothing to release)."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


#: NEWSLETTER_TRANSPORT → the class. Adding a transport is one module here and one line.
TRANSPORTS: Registry[type[Transport]] = Registry(
    "transport (NEWSLETTER_TRANSPORT)",
    {
        "file": "newsletter.delivery.transports.file:FileTransport",
        "smtp": "newsletter.delivery.transports.smtp:SMTPTransport",
        "sendgrid": "newsletter.delivery.transports.sendgrid:SendGridTransport",
    },
)


def get_transport(settings: Settings) -> Transport:
    """The transport NEWSLETTER_TRANSPORT names, configured from settings."""
    return TRANSPORTS.load(settings.transport)(settings)
