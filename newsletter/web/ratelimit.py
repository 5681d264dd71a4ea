"""Sign-up rate limits per client IP and per address (the `limits` library, moving window).

The counters live in this process's memory: one `newsletter web` / `newsletter serve`
process serves the site, a restart forgets the counts, and that is acceptable because the
limits only slow abuse down; the hard promise (a pending address gets at most
NEWSLETTER_CONFIRMATIONS_PER_DAY confirmation emails) is kept in the database by
`send_confirmation`. Several web processes would each count on their own.
"""

from __future__ import annotations

from enum import StrEnum

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from newsletter.errors import UserError
from newsletter.settings import Settings


class Bucket(StrEnum):
    """What is being counted."""

    SIGNUP_IP = "signup-ip"
    SIGNUP_ADDRESS = "signup-address"
    PREVIEW_IP = "preview-ip"
    ADMIN_LOGIN_IP = "admin-login-ip"


def _parse(name: str, value: str) -> list[RateLimitItem]:
    try:
        return parse_many(value)
    except ValueError:
        raise UserError(
            f"NEWSLETTER_{name.upper()} = {value!r} is not a rate limit; use e.g. '10/hour;50/day'"
        ) from None


class RateLimiter:
    """Moving-window limits for each bucket; `hit` counts one request and says if it may pass."""

    def __init__(self, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items = {
            Bucket.SIGNUP_IP: _parse("signup_limit_per_ip", settings.signup_limit_per_ip),
            Bucket.SIGNUP_ADDRESS: _parse("signup_limit_per_address", settings.signup_limit_per_address),
            Bucket.PREVIEW_IP: _parse("preview_limit_per_ip", settings.preview_limit_per_ip),
            Bucket.ADMIN_LOGIN_IP: _parse("admin_login_limit_per_ip", settings.admin_login_limit_per_ip),
        }

    def hit(self, bucket: Bucket, key: str) -> bool:
        """Count one request for `key`; False when any of the bucket's limits is exceeded."""
        allowed = True
        for item in self._items[bucket]:
            allowed = self._limiter.hit(item, bucket.value, key) and allowed
        return allowed
