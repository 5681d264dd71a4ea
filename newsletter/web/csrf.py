"""CSRF protection for our forms: a signed double-submit token tied to a cookie.

The browser gets a random value in an HttpOnly, SameSite=Lax cookie; every form carries that
value signed with the secret key (itsdangerous, with its own salt and an age limit). A POST
passes only when the form's token verifies and names the cookie's value, which another site
can neither read nor set. Stateless: nothing is stored on the server.
"""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from newsletter.settings import Settings

COOKIE = "nl_csrf"
FIELD = "csrf_token"
#: A form left open longer than this must be submitted again (with the input kept).
MAX_AGE_SECONDS = 12 * 3600


class CsrfProtection:
    """Issues form tokens and checks them against the request's cookie."""

    def __init__(self, settings: Settings) -> None:
        self._serializer = URLSafeTimedSerializer(settings.signing_key, salt="newsletter.csrf")
        self._secure = settings.base_url.startswith("https://")

    def cookie_value(self, request: Request) -> str:
        """The browser's CSRF cookie, or a new value to set (remembered on the request)."""
        value = request.cookies.get(COOKIE)
        if not value or len(value) > 100:
            value = getattr(request.state, "new_csrf_cookie", None) or secrets.token_urlsafe(32)
            request.state.new_csrf_cookie = value
        return value

    def token(self, request: Request) -> str:
        """The hidden-field value for a form rendered for this request."""
        return str(self._serializer.dumps(self.cookie_value(request)))

    def set_cookie(self, request: Request, response: Response) -> None:
        """Send the cookie when this request had to make a new one."""
        value = getattr(request.state, "new_csrf_cookie", None)
        if value:
            response.set_cookie(COOKIE, value, httponly=True, samesite="lax", secure=self._secure, path="/")

    def valid(self, request: Request, submitted: str | None) -> bool:
        """Whether a POST's form token matches its cookie (and is not too old)."""
        cookie = request.cookies.get(COOKIE)
        if not cookie or not submitted or len(submitted) > 500:
            return False
        try:
            value = self._serializer.loads(submitted, max_age=MAX_AGE_SECONDS)
        except BadSignature:
            return False
        return isinstance(value, str) and hmac.compare_digest(value, cookie)
