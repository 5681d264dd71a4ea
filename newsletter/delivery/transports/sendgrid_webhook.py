"""SendGrid's signed Event Webhook: verify the batch and read its events (`delivery.events`
records them once and acts on them).

SendGrid signs `timestamp + body` with ECDSA P-256; `sendgrid.helpers.eventwebhook` checks it
against the public key from the SendGrid console (NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY).
Anything unsigned or altered is refused before a single event is read. SendGrid retries
batches and may send an event twice, so every event is recorded under its `sg_event_id` and
a second copy does nothing.

What each event does: `bounce` and `dropped` mark the subscriber bounced, `spamreport`
complained, `unsubscribe` / `group_unsubscribe` unsubscribed; `delivered`, `open`, `click`
(and the rest) only count towards the delivery's stats. A `bounce` of type `blocked` is a
temporary refusal by the receiving server, so it is counted but does not stop mail.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from newsletter.delivery.events import ProviderEvent, WebhookRefused, WebhookReport
from newsletter.errors import UserError
from newsletter.settings import Settings

SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP

#: The custom_args key our SendGrid transport puts the delivery id under (SendGrid copies
#: custom_args to the top level of every event).
DELIVERY_ARG = "delivery_id"


class Verifier:
    """Checks SendGrid signatures with the configured public key (loaded once)."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.sendgrid_webhook_public_key
        key = secret.get_secret_value().strip() if secret is not None else ""
        self._webhook: EventWebhook | None = None
        if key:
            try:
                self._webhook = EventWebhook(key)
            except ValueError:
                raise UserError(
                    "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key; paste the "
                    "base64 'Verification Key' from SendGrid's Signed Event Webhook settings"
                ) from None

    def verify(self, body: bytes, signature: str | None, timestamp: str | None) -> None:
        """Raise WebhookRefused(403) unless `body` carries a valid SendGrid signature."""
        if self._webhook is None:
            raise WebhookRefused(
                403, "signed event webhook is not configured (NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY)"
            )
        if not signature or not timestamp:
            raise WebhookRefused(403, "unsigned request: signature and timestamp headers are required")
        try:
            valid = self._webhook.verify_signature(body.decode("utf-8"), signature, timestamp)
        except (ValueError, UnicodeDecodeError):  # not base64 / not UTF-8: cannot be ours
            valid = False
        if not valid:
            raise WebhookRefused(403, "signature does not match the payload")


def parse_events(body: bytes) -> list[Any]:
    """The batch as a list (a signed body that is not a JSON array is a 400)."""
    try:
        events = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookRefused(400, "body is not JSON") from None
    if not isinstance(events, list):
        raise WebhookRefused(400, "body must be a JSON array of events")
    try:
        nul = _has_nul(events)
    except RecursionError:
        raise WebhookRefused(400, "events are nested too deeply") from None
    if nul:
        # PostgreSQL text cannot hold NUL; no real event carries one, so refuse the batch.
        raise WebhookRefused(400, "events must not contain NUL characters")
    return events


def _has_nul(value: Any) -> bool:
    """Whether any string (key or value) in a decoded JSON document holds a NUL."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def _event_key(event: dict[str, Any]) -> str:
    """The provider's event id, or a digest of the event itself when it has none."""
    raw = event.get("sg_event_id")
    if isinstance(raw, str) and 0 < len(raw) <= 100:
        return raw
    canonical = json.dumps(event, sort_keys=True, default=str).encode("utf-8", "replace")
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def _occurred_at(event: dict[str, Any]) -> datetime | None:
    stamp = event.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return None
    try:
        return datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _delivery_id(event: dict[str, Any]) -> int | None:
    args = event.get("custom_args")
    raw = event.get(DELIVERY_ARG)
    if raw is None and isinstance(args, dict):
        raw = args.get(DELIVERY_ARG)
    delivery_id = _int_or_none(raw)
    if delivery_id is None or delivery_id > 2**63 - 1:
        return None
    return delivery_id


def read_events(raw: list[Any]) -> tuple[list[ProviderEvent], WebhookReport]:
    """A parsed batch as provider-neutral events, and a report counting what was unusable."""
    report = WebhookReport(received=len(raw))
    events = []
    for event in raw:
        kind = event.get("event") if isinstance(event, dict) else None
        if not isinstance(kind, str) or not kind or len(kind) > 32:
            report.ignored += 1
            continue
        email = event.get("email")
        events.append(
            ProviderEvent(
                key=_event_key(event),
                kind=kind,
                delivery_id=_delivery_id(event),
                email=email if isinstance(email, str) and 0 < len(email) <= 320 else None,
                occurred_at=_occurred_at(event),
                temporary=kind == "bounce" and event.get("type") == "blocked",
            )
        )
    return events, report
