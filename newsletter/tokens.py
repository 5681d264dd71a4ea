"""Signed, purpose-scoped, expiring tokens for every link we email or show.

Links never carry a bare address or id: they carry an itsdangerous token signed with the
secret key, salted with its purpose (a feedback token cannot unsubscribe anyone) and checked
against an age limit that fits the purpose. The payload holds the subscriber's numeric id
only — never the address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeTimedSerializer

from newsletter.settings import Settings


class Purpose(StrEnum):
    """What a token may be used for; each has its own salt, route and age limit."""

    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    FEEDBACK = "feedback"
    ARCHIVE = "archive"  # one digest in the browser ("view in browser"), by date
    FEED = "feed"  # a reader's private Atom feed of their picks


#: How long a token of each purpose stays valid. Unsubscribe links must outlive the 30 days
#: CAN-SPAM asks for by a wide margin; confirmation links are short-lived by design.
MAX_AGE: dict[Purpose, timedelta] = {
    Purpose.CONFIRM: timedelta(days=3),
    Purpose.UNSUBSCRIBE: timedelta(days=120),
    Purpose.PREFERENCES: timedelta(days=60),
    Purpose.FEEDBACK: timedelta(days=60),
    # An old email's "view in browser" should still open a year later; it shows only the
    # picks of that one digest.
    Purpose.ARCHIVE: timedelta(days=366),
    # A feed URL lives in a feed reader for years; it shows only the reader's picks, and
    # rotating NEWSLETTER_SECRET_KEY revokes every one.
    Purpose.FEED: timedelta(days=3650),
}


class TokenError(Exception):
    """A token that cannot be used; `expired` tells a stale link from a forged one."""

    def __init__(self, message: str, *, expired: bool = False, subscriber_id: int | None = None):
        super().__init__(message)
        self.expired = expired
        self.subscriber_id = subscriber_id


@dataclass(frozen=True)
class Token:
    """What a valid token says."""

    subscriber_id: int
    issued_at: datetime
    extra: dict[str, Any]


def _serializer(settings: Settings, purpose: Purpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.signing_key, salt=f"newsletter.{purpose.value}")


def make_token(settings: Settings, purpose: Purpose, subscriber_id: int, **extra: Any) -> str:
    """A URL-safe token for `purpose` naming one subscriber (plus optional extra fields)."""
    payload: dict[str, Any] = {"s": subscriber_id}
    if extra:
        payload["x"] = extra
    return _serializer(settings, purpose).dumps(payload)


def read_token(settings: Settings, purpose: Purpose, token: str, *, now: datetime | None = None) -> Token:
    """Verify signature, purpose and age; raise TokenError saying what is wrong."""
    serializer = _serializer(settings, purpose)
    max_age = MAX_AGE[purpose]
    try:
        payload, issued = serializer.loads(token, max_age=None, return_timestamp=True)
    except BadSignature:
        raise TokenError("this link is not valid (it may be incomplete or for another page)") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), int):
        raise TokenError("this link is not valid")
    age = (now or datetime.now(UTC)) - issued
    if age > max_age:
        raise TokenError(
            f"this link expired after {max_age.days} days", expired=True, subscriber_id=payload["s"]
        )
    return Token(subscriber_id=payload["s"], issued_at=issued, extra=payload.get("x", {}))


def link(
    settings: Settings,
    purpose: Purpose,
    subscriber_id: int,
    *,
    claims: Mapping[str, Any] | None = None,
    suffix: str = "",
    **query: Any,
) -> str:
    """The absolute URL of a page for `purpose`, e.g. BASE_URL/unsubscribe/<token>.

    `claims` are signed into the token (the digest date of an archive link); `suffix` follows
    the token in the path (`/atom.xml`); `query` is the unsigned query string.
    """
    token = make_token(settings, purpose, subscriber_id, **(claims or {}))
    url = f"{settings.base_url}/{purpose.value}/{token}{suffix}"
    return f"{url}?{urlencode(query)}" if query else url
