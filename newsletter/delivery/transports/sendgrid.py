"""SendGrid transport: the `sendgrid` package, a bounded pool, and patient fault handling.

- A thread pool of `sendgrid_concurrency` requests at a time (SendGrid's limits are per
  second; unbounded fan-out only earns 429s).
- 429: every worker pauses until `X-RateLimit-Reset` (one shared gate, not N sleepers that
  all retry at once), without spending the retry budget.
- 5xx, timeouts and dropped connections: retry with exponential backoff and jitter, up to
  `sendgrid_max_retries`, then the message fails with the reason.
- 400: that one message is wrong; it fails, the batch goes on.
- 401/403: the key or the sender is wrong, so every message would fail: the run stops with
  one clear line, and unsent messages stay pending for the next run.
The request carries `custom_args.delivery_id` (no personal data) to match webhook events.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Category,
    CustomArg,
    From,
    Header,
    Mail,
    MailSettings,
    ReplyTo,
    SandBoxMode,
    To,
)

from newsletter.delivery.transports import (
    Outgoing,
    SendResult,
    Transport,
    TransportStopped,
    _always,
)
from newsletter.settings import Settings

#: Headers we set ourselves that SendGrid lets a sender pass through.
PASSED_HEADERS = ("Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id")
#: Bound on 429 pauses for one message, separate from the 5xx retry budget.
MAX_RATE_LIMIT_WAITS = 20


def request_body(
    message: EmailMessage, *, delivery_id: int, categories: Sequence[str], sandbox: bool
) -> dict[str, Any]:
    """The v3 mail/send JSON for one message, built with the sendgrid helpers."""
    from_name, from_email = parseaddr(str(message["From"]))
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    mail = Mail(
        from_email=From(from_email, from_name or None),
        to_emails=To(getaddresses([str(message["To"])])[0][1]),
        subject=str(message["Subject"]),
        plain_text_content=text.get_content() if text else None,
        html_content=html.get_content() if html else None,
    )
    if message["Reply-To"]:
        name, addr = parseaddr(str(message["Reply-To"]))
        mail.reply_to = ReplyTo(addr, name or None)
    for header in PASSED_HEADERS:
        if message[header]:
            mail.header = Header(header, str(message[header]))
    for category in categories[:10]:
        mail.category = Category(category)
    # Top-level custom_args is a string in the v3 schema; per-personalization is the map.
    mail.custom_arg = CustomArg("delivery_id", str(delivery_id), p=0)
    if sandbox:
        settings = MailSettings()
        settings.sandbox_mode = SandBoxMode(True)
        mail.mail_settings = settings
    return mail.get()


def _error_text(exc: HTTPError) -> str:
    """SendGrid's `{"errors": [{"message", "field"}]}` as one line."""
    try:
        errors = json.loads(exc.body or b"{}").get("errors", [])
        parts = [f"{e.get('field') or ''}: {e.get('message')}".lstrip(": ") for e in errors]
    except (ValueError, AttributeError):
        parts = []
    return f"SendGrid {exc.status_code}: " + ("; ".join(parts) or str(exc.reason))


class SendGridTransport(Transport):
    """Sends each message with one POST /v3/mail/send."""

    name = "sendgrid"

    def __init__(self, settings: Settings) -> None:
        if settings.sendgrid_api_key is None or not settings.sendgrid_api_key.get_secret_value():
            raise TransportStopped(
                "NEWSLETTER_TRANSPORT=sendgrid needs an API key: set NEWSLETTER_SENDGRID_API_KEY"
            )
        self.settings = settings
        self._key = settings.sendgrid_api_key.get_secret_value()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(
            max_workers=settings.sendgrid_concurrency, thread_name_prefix="sendgrid"
        )
        self._gate = threading.Lock()
        self._resume_at = 0.0  # time.time() before which nobody sends (after a 429)
        self._stopped: str | None = None

    def _client(self) -> SendGridAPIClient:
        # The client mutates its request headers per call, so each thread keeps its own.
        client = getattr(self._local, "client", None)
        if client is None:
            client = SendGridAPIClient(self._key, host=self.settings.sendgrid_host)
            self._local.client = client
        return client

    def _wait_for_gate(self) -> None:
        while (delay := self._resume_at - time.time()) > 0:
            time.sleep(min(delay, 1.0))

    def _pause_until_reset(self, exc: HTTPError, attempt: int) -> None:
        reset = (exc.headers or {}).get("X-RateLimit-Reset")
        try:
            wait = float(reset) - time.time() if reset is not None else self._backoff(attempt)
        except ValueError:
            wait = self._backoff(attempt)
        wait = min(max(wait, 0.0), self.settings.sendgrid_max_wait_seconds)
        with self._gate:
            self._resume_at = max(self._resume_at, time.time() + wait)

    def _backoff(self, attempt: int) -> float:
        """Exponential delay with jitter, so retries of a burst do not arrive together."""
        base = self.settings.sendgrid_backoff_seconds * (2**attempt)
        return min(base * (0.5 + random.random()), self.settings.sendgrid_max_wait_seconds)

    def _deliver(self, item: Outgoing, claim: Callable[[Outgoing], bool]) -> SendResult | None:
        if self._stopped or not claim(item):
            return None if not self._stopped else SendResult(item.key, False, attempted=False)
        s = self.settings
        body = request_body(
            item.message,
            delivery_id=item.key,
            categories=s.sendgrid_categories,
            sandbox=s.sendgrid_sandbox,
        )
        retries = rate_waits = attempts = 0
        while True:
            self._wait_for_gate()
            attempts += 1
            try:
                response = self._client().client.mail.send.post(request_body=body, timeout=s.sendgrid_timeout)
            except HTTPError as exc:
                status = exc.status_code
                if status == 429 and rate_waits < MAX_RATE_LIMIT_WAITS:
                    rate_waits += 1
                    self._pause_until_reset(exc, rate_waits)
                    continue
                if status in (401, 403):
                    self._stopped = (
                        f"SendGrid refused the request ({_error_text(exc)}); check "
                        "NEWSLETTER_SENDGRID_API_KEY and that the From address is a verified sender"
                    )
                    return SendResult(item.key, False, error=self._stopped, attempted=False)
                if status >= 500 and retries < s.sendgrid_max_retries:
                    retries += 1
                    time.sleep(self._backoff(retries - 1))
                    continue
                return SendResult(item.key, False, error=_error_text(exc), attempts=attempts)
            except (TimeoutError, URLError, ConnectionError) as exc:
                if retries < s.sendgrid_max_retries:
                    retries += 1
                    time.sleep(self._backoff(retries - 1))
                    continue
                reason = getattr(exc, "reason", exc)
                return SendResult(item.key, False, error=f"SendGrid unreachable: {reason}", attempts=attempts)
            provider_id = response.headers.get("X-Message-Id") if response.headers else None
            return SendResult(item.key, True, provider_id=provider_id, attempts=attempts)

    def send(
        self, batch: Sequence[Outgoing], claim: Callable[[Outgoing], bool] = _always
    ) -> Iterator[SendResult]:
        futures = [self._pool.submit(self._deliver, item, claim) for item in batch]
        for future in as_completed(futures):
            result = future.result()
            if result is not None:
                yield result
        if self._stopped:
            raise TransportStopped(self._stopped)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
