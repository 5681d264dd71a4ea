"""SendGrid transport: v3 mail/send over pooled keep-alive HTTP, with patient fault handling.

- `sendgrid_concurrency` workers share one httpx client whose pool keeps as many connections
  alive. The `sendgrid` package's client (python-http-client) opens a new connection, with
  a new TLS handshake on the real API, for every request (urllib), and building its `Mail`
  helper from a MIME message cost more CPU than rendering the digest; so the request body is
  built here from the mail's parts, as the v3 schema defines it (the tests validate every
  body against SendGrid's OpenAPI spec).
- 429: every worker pauses until `X-RateLimit-Reset` (one shared gate, not N sleepers that
  all retry at once), without spending the retry budget.
- 5xx, and a request that never fully reached SendGrid (connection refused, dropped while
  sending): retry with exponential backoff and jitter, up to `sendgrid_max_retries`, then
  the message fails with the reason. Nothing was accepted, so retrying cannot duplicate.
- The answer lost after the request went out (read timeout, connection dropped, answer cut
  before its status line): SendGrid may have accepted the message, so it is not retried
  here; the result is UNKNOWN and the outbox's in-flight policy decides. An answer whose
  status line arrived is enough: a 202 with its body cut short is a sent message.
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
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

import httpx

from newsletter.delivery.message import Mail
from newsletter.delivery.transports import (
    CLAIM_LOST,
    Outcome,
    Outgoing,
    SendResult,
    Transport,
    TransportStopped,
    unknown_outcome,
)
from newsletter.settings import Settings

#: Headers we set ourselves that SendGrid lets a sender pass through.
PASSED_HEADERS = ("Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id")

#: Bound on 429 pauses for one message, separate from the 5xx retry budget.
MAX_RATE_LIMIT_WAITS = 20

#: Failures that happen before the whole request reached SendGrid: it cannot have been accepted.
NOT_DELIVERED = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.UnsupportedProtocol,
)


def _address(value: str) -> dict[str, str]:
    name, email = parseaddr(value)
    return {"email": email, "name": name} if name else {"email": email}


def request_body(mail: Mail, *, delivery_id: int, categories: Sequence[str], sandbox: bool) -> dict[str, Any]:
    """The v3 mail/send JSON for one message."""
    body: dict[str, Any] = {
        # custom_args per personalization: the top-level one is a string in the v3 schema.
        "personalizations": [{"to": [{"email": mail.to}], "custom_args": {"delivery_id": str(delivery_id)}}],
        "from": _address(mail.sender),
        "subject": mail.subject,
        "content": [{"type": "text/plain", "value": mail.text}, {"type": "text/html", "value": mail.html}],
        "headers": {"Message-ID": mail.message_id}
        | {name: value for name, value in mail.headers.items() if name in PASSED_HEADERS},
    }
    if mail.reply_to:
        body["reply_to"] = _address(mail.reply_to)
    if categories:
        body["categories"] = list(categories[:10])
    if sandbox:
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return body


def _error_text(status: int, raw: bytes) -> str:
    """SendGrid's `{"errors": [{"message", "field"}]}` as one line."""
    try:
        errors = json.loads(raw or b"{}").get("errors", [])
        parts = [f"{e.get('field') or ''}: {e.get('message')}".lstrip(": ") for e in errors]
    except (ValueError, AttributeError):
        parts = []
    return f"SendGrid {status}: " + ("; ".join(parts) or httpx.codes.get_reason_phrase(status))


class SendGridTransport(Transport):
    """Sends each message with one POST /v3/mail/send on a shared keep-alive pool."""

    name = "sendgrid"

    def __init__(self, settings: Settings) -> None:
        if settings.sendgrid_api_key is None or not settings.sendgrid_api_key.get_secret_value():
            raise TransportStopped(
                "NEWSLETTER_TRANSPORT=sendgrid needs an API key: set NEWSLETTER_SENDGRID_API_KEY"
            )
        super().__init__(settings, concurrency=settings.sendgrid_concurrency)
        connections = settings.sendgrid_concurrency
        self._client = httpx.Client(
            base_url=settings.sendgrid_host,
            headers={
                "Authorization": f"Bearer {settings.sendgrid_api_key.get_secret_value()}",
                "Content-Type": "application/json",
            },
            timeout=settings.sendgrid_timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self._gate = threading.Lock()
        self._resume_at = 0.0  # time.time() before which nobody sends (after a 429)

    def _wait_for_gate(self) -> None:
        while (delay := self._resume_at - time.time()) > 0:
            time.sleep(min(delay, 1.0))

    def _pause_until_reset(self, reset: str | None, attempt: int) -> None:
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

    def _post(self, body: bytes) -> tuple[int, httpx.Headers, bytes]:
        """One POST: (status, headers, body). Once the status line is in, a cut body changes
        nothing: SendGrid has answered."""
        with self._client.stream("POST", "/v3/mail/send", content=body) as response:
            try:
                raw = response.read()
            except httpx.TransportError:
                raw = b""
            return response.status_code, response.headers, raw

    def deliver(self, item: Outgoing) -> SendResult:
        s = self.settings
        body = json.dumps(
            request_body(
                item.mail, delivery_id=item.key, categories=s.sendgrid_categories, sandbox=s.sendgrid_sandbox
            )
        ).encode()
        retries = rate_waits = attempts = 0
        while True:
            self._wait_for_gate()
            if self.stopped:
                return SendResult(item.key, Outcome.NOT_SENT, error=self.stopped, attempts=attempts)
            if not item.held():
                return SendResult(item.key, Outcome.NOT_SENT, error=CLAIM_LOST, attempts=attempts)
            attempts += 1
            try:
                status, headers, raw = self._post(body)
            except NOT_DELIVERED as exc:
                if retries < s.sendgrid_max_retries:
                    retries += 1
                    time.sleep(self._backoff(retries - 1))
                    continue
                return SendResult(
                    item.key, Outcome.FAILED, error=f"SendGrid unreachable: {exc!r}", attempts=attempts
                )
            except httpx.TransportError as exc:
                return SendResult(item.key, Outcome.UNKNOWN, error=unknown_outcome(exc), attempts=attempts)
            if 200 <= status < 300:
                return SendResult(
                    item.key, Outcome.SENT, provider_id=headers.get("X-Message-Id"), attempts=attempts
                )
            if status == 429 and rate_waits < MAX_RATE_LIMIT_WAITS:
                rate_waits += 1
                self._pause_until_reset(headers.get("X-RateLimit-Reset"), rate_waits)
                continue
            if status in (401, 403):
                raise TransportStopped(
                    f"SendGrid refused the request ({_error_text(status, raw)}); check "
                    "NEWSLETTER_SENDGRID_API_KEY and that the From address is a verified sender"
                )
            if status >= 500 and retries < s.sendgrid_max_retries:
                retries += 1
                time.sleep(self._backoff(retries - 1))
                continue
            return SendResult(item.key, Outcome.FAILED, error=_error_text(status, raw), attempts=attempts)

    def close(self) -> None:
        super().close()
        self._client.close()
