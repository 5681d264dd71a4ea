"""What every route needs: settings, database, templates, CSRF, rate limits, token checks.

Built once by `create_app` and kept on `app.state`; routes reach it through `get_context`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

import templates as template_package
from newsletter.db import session_scope
from newsletter.delivery.transports.sendgrid_webhook import Verifier
from newsletter.settings import Settings
from newsletter.tokens import Purpose, Token, TokenError, make_token, read_token
from newsletter.web.csrf import FIELD, CsrfProtection
from newsletter.web.ratelimit import RateLimiter

TEMPLATE_DIR = Path(template_package.__file__).parent / "web"
#: Longest token we even try to verify (ours are well under 200 characters).
MAX_TOKEN_LENGTH = 400


@dataclass
class WebContext:
    """Long-lived collaborators of the web app."""

    settings: Settings
    engine: Engine
    templates: Jinja2Templates
    csrf: CsrfProtection
    limiter: RateLimiter
    verifier: Verifier

    @property
    def site_name(self) -> str:
        """The From display name ("Paper Digest"), so the site and the emails match."""
        return parseaddr(self.settings.from_address)[0] or "Paper Digest"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success (nothing half-written on error)."""
        with session_scope(self.engine) as session:
            yield session

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        """A page, with the CSRF token, CSP nonce and site name the layout needs."""
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "site_name": self.site_name,
                "csrf_field": FIELD,
                "csrf_token": _Lazy(lambda: self.csrf.token(request)),
                "nonce": request.state.csp_nonce,
                **context,
            },
            status_code=status_code,
        )
        self.csrf.set_cookie(request, response)
        return response

    def message(self, request: Request, status_code: int, title: str, text: str, **context: Any) -> Response:
        """A page that only explains something (bad link, rate limit, not found…)."""
        return self.render(request, "message.html", status_code, title=title, text=text, **context)

    def csrf_ok(self, request: Request, form: FormData) -> bool:
        """Whether a posted form carries this browser's CSRF token."""
        value = form.get(FIELD)
        return self.csrf.valid(request, value if isinstance(value, str) else None)

    def read(self, purpose: Purpose, token: str) -> Token:
        """Verify a link token for `purpose` (TokenError when tampered, expired or misused)."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("this link is not valid")
        return read_token(self.settings, purpose, token)

    def path(self, purpose: Purpose, subscriber_id: int) -> str:
        """The site-relative path of a signed page for this subscriber (/preferences/<token>)."""
        return f"/{purpose.value}/{make_token(self.settings, purpose, subscriber_id)}"


class _Lazy:
    """A template value made only when a template prints it: pages without a form then set
    no cookie (the one-click unsubscribe answer, for one, must not)."""

    def __init__(self, make: Callable[[], str]) -> None:
        self._make = make
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = self._make()
        return self._value


def get_context(request: Request) -> WebContext:
    """FastAPI dependency: the app's WebContext."""
    context: WebContext = request.app.state.web
    return context


async def read_form(request: Request) -> FormData:
    """FastAPI dependency: the posted form, with no files and few fields allowed."""
    return await request.form(max_files=0, max_fields=50)
