"""One interface for every way a message leaves: `file`, `smtp`, `sendgrid`.

A transport sends one message at a time per worker (`deliver`), on a pool of `concurrency`
workers it owns: `submit` hands it a message and returns a future of the result, so the
outbox can render, claim and record while messages are on the wire. The outbox claims each
message in the database before it submits it; a transport only checks, before every attempt,
that the claim is still `held` (a run whose claims expired must not send them any more).

Every result says what is known about the message (`Outcome`). The one that matters most is
UNKNOWN: the request reached the provider and its answer was lost (a timeout, a dropped
connection, an answer cut short), so the provider may have accepted it. A transport never
sends such a message again by itself; the outbox's in-flight policy decides. Any exception a
transport did not expect is turned into that message's UNKNOWN result: one message's trouble
never ends a run.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from enum import StrEnum
from functools import cached_property
from types import TracebackType
from typing import ClassVar

from newsletter.delivery.message import Mail
from newsletter.errors import UserError
from newsletter.registry import Registry
from newsletter.settings import Settings

log = logging.getLogger("newsletter.delivery.transports")


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Outgoing:
    """A message to send; `key` is the delivery id (the only id a provider sees).

    `held` says whether the sender still holds the message's claim; it is checked before
    every attempt (a long rate-limit wait can outlast a run that stopped renewing).
    """

    key: int
    mail: Mail
    digest_date: date
    held: Callable[[], bool] = _always

    @cached_property
    def message(self) -> EmailMessage:
        """The RFC 5322 form, built once and only by the transports that need it."""
        return self.mail.as_message()


class Outcome(StrEnum):
    """What is known about one message after its transport is done with it."""

    SENT = "sent"  # the provider accepted it
    FAILED = "failed"  # the provider refused it, or could not be reached: not sent
    NOT_SENT = "not-sent"  # nothing reached the provider (the run stopped first): still owed
    UNKNOWN = "unknown"  # the answer was lost after the request went out: maybe accepted


@dataclass(frozen=True)
class SendResult:
    """What happened to one message."""

    key: int
    outcome: Outcome
    provider_id: str | None = None
    error: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """The provider accepted the message."""
        return self.outcome is Outcome.SENT

    @property
    def attempted(self) -> bool:
        """Something reached (or may have reached) the provider."""
        return self.outcome is not Outcome.NOT_SENT


class TransportStopped(UserError):
    """Every further message would fail (bad key, unverified sender): stop the run."""


class Transport(ABC):
    """Sends messages on its own pool of workers; a context manager so connections close."""

    name: ClassVar[str]

    def __init__(self, settings: Settings, *, concurrency: int = 1) -> None:
        """Configure from settings; a missing key is a UserError here, before anything is written."""
        self.settings = settings
        self.concurrency = concurrency
        self.stopped: str | None = None  # why every further message would fail, once known
        self._pool: ThreadPoolExecutor | None = None

    @abstractmethod
    def deliver(self, item: Outgoing) -> SendResult:
        """Send one message (in a worker thread); raise TransportStopped when no message can
        go out any more (bad credentials, unreachable server)."""

    def submit(self, item: Outgoing) -> Future[SendResult]:
        """Start sending `item`; the future's result is never an exception."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"transport-{self.name}")
        return self._pool.submit(self._deliver, item)

    def _deliver(self, item: Outgoing) -> SendResult:
        if self.stopped:
            return SendResult(item.key, Outcome.NOT_SENT, error=self.stopped, attempts=0)
        if not item.held():
            return SendResult(item.key, Outcome.NOT_SENT, error=CLAIM_LOST, attempts=0)
        try:
            return self.deliver(item)
        except TransportStopped as exc:
            self.stopped = exc.message
            return SendResult(item.key, Outcome.NOT_SENT, error=exc.message, attempts=0)
        except Exception as exc:  # one message's surprise must not end the run (issue 11, item 3)
            log.exception("%s transport: unexpected error sending delivery %s", self.name, item.key)
            return SendResult(item.key, Outcome.UNKNOWN, error=unknown_outcome(exc))

    def send(self, batch: Sequence[Outgoing]) -> Iterator[SendResult]:
        """Send `batch`, yielding each result as it completes; raise TransportStopped after
        the last one when the provider refused to go on."""
        for future in as_completed([self.submit(item) for item in batch]):
            yield future.result()
        if self.stopped:
            raise TransportStopped(self.stopped)

    def close(self) -> None:
        """Wait for messages on the wire, then release workers (and, in subclasses, connections)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


#: Why a message was not sent although it was claimed: the claim expired first.
CLAIM_LOST = "not sent: this run stopped renewing its claim, another run may take the message over"


def unknown_outcome(reason: object) -> str:
    """The error text of an UNKNOWN result (the outbox adds what its policy did)."""
    if isinstance(reason, BaseException):
        reason = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
    return f"outcome unknown, the provider may have accepted it ({reason})"


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
