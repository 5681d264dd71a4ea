"""Operator login for /admin: a signed session cookie, CSRF on every form, rate-limited login.

- The session is a cookie signed with the secret key (itsdangerous, its own salt), naming the
  operator and their `session_version`, valid `SESSION_HOURS`; HttpOnly, SameSite=Strict,
  Secure behind https, path /admin. Logging out (or a new password) bumps the version, so
  every copy of the cookie stops working, not just this browser's.
- Login attempts are limited per client IP in memory (NEWSLETTER_ADMIN_LOGIN_LIMIT_PER_IP),
  and per account in the database (`newsletter.operators`: 5 wrong passwords lock it for
  15 minutes). Every failure answers the same words, so names cannot be probed.
- Without a valid session, a page GET is redirected to the login page and anything else
  (a POST, a chart) is a 401: no admin URL shows data to a stranger.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from newsletter import operators
from newsletter.operators import Operator
from newsletter.web.context import WebContext, get_context, read_form
from newsletter.web.ratelimit import Bucket
from newsletter.web.signup import client_ip

router = APIRouter()
Context = Annotated[WebContext, Depends(get_context)]
Form = Annotated[FormData, Depends(read_form)]

COOKIE = "nl_admin"
PREFIX = "/admin"
SESSION_HOURS = 12
FAILED = "Wrong name or password. After 5 wrong passwords in a row an account is locked for 15 minutes."


class LoginRequired(Exception):
    """Raised by `current_operator` when the request has no valid session."""


def _serializer(ctx: WebContext) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.settings.signing_key, salt="newsletter.admin-session")


def _start_session(ctx: WebContext, response: Response, operator: Operator) -> None:
    value = _serializer(ctx).dumps({"o": operator.id, "v": operator.session_version})
    response.set_cookie(
        COOKIE,
        str(value),
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.base_url.startswith("https://"),
        path=PREFIX,
    )


def current_operator(request: Request, ctx: Context) -> Operator:
    """FastAPI dependency: the logged-in operator, or LoginRequired."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 300:
        raise LoginRequired
    try:
        data = _serializer(ctx).loads(raw, max_age=SESSION_HOURS * 3600)
    except BadSignature:
        raise LoginRequired from None
    if not isinstance(data, dict) or not isinstance(data.get("o"), int):
        raise LoginRequired
    with ctx.session() as session:
        operator = session.get(Operator, data["o"])
    if operator is None or operator.session_version != data.get("v"):
        raise LoginRequired
    return operator


def login_required(request: Request, exc: Exception) -> Response:
    """The answer to LoginRequired: pages go to the login form, everything else gets a 401."""
    if request.method == "GET" and not request.url.path.endswith(".svg"):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)
    ctx: WebContext = request.app.state.web
    return ctx.message(request, 401, "Please log in", "This page is for operators; log in at /admin/login.")


def _safe_next(value: object) -> str:
    """Where to go after logging in: an admin page of this site, never another site."""
    if isinstance(value, str) and value.startswith(f"{PREFIX}/") and "//" not in value and "\\" not in value:
        return value
    return PREFIX


def _login_page(
    ctx: WebContext, request: Request, status: int = 200, error: str | None = None, **values: str
) -> Response:
    return ctx.render(
        request,
        "admin/login.html",
        status,
        error=error,
        next=_safe_next(values.get("next") or request.query_params.get("next")),
        name=values.get("name", ""),
    )


@router.get(f"{PREFIX}/login")
def login_form(request: Request, ctx: Context) -> Response:
    """The login form."""
    return _login_page(ctx, request)


@router.post(f"{PREFIX}/login")
def login(request: Request, ctx: Context, form: Form) -> Response:
    """Check the name and password; on success start a session and go where the operator was going."""
    name = str(form.get("name") or "")[:64]
    password = str(form.get("password") or "")
    target = _safe_next(form.get("next"))
    if not ctx.csrf_ok(request, form):
        return _login_page(
            ctx,
            request,
            403,
            "This form expired or came from another page. Please log in again.",
            name=name,
            next=target,
        )
    if not ctx.limiter.hit(Bucket.ADMIN_LOGIN_IP, client_ip(request)):
        return _login_page(
            ctx,
            request,
            429,
            "Too many login attempts from your network; wait a while.",
            name=name,
            next=target,
        )
    with ctx.session() as session:
        operator = operators.authenticate(session, name, password)
    if operator is None:
        return _login_page(ctx, request, 401, FAILED, name=name, next=target)
    response = RedirectResponse(target, status_code=303)
    _start_session(ctx, response, operator)
    return response


@router.post(f"{PREFIX}/logout")
def logout(
    request: Request, ctx: Context, form: Form, operator: Annotated[Operator, Depends(current_operator)]
) -> Response:
    """End every session of this operator and go back to the login form."""
    if not ctx.csrf_ok(request, form):
        return ctx.message(
            request, 403, "Not logged out", "This form expired; go back and press the button again."
        )
    with ctx.session() as session:
        found = session.get(Operator, operator.id)
        if found is not None:
            operators.end_sessions(session, found)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response
