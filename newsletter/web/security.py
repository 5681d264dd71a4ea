"""Headers every response carries, and a cap on request bodies (pure ASGI middleware).

Links carry capability tokens in their path, so no page may leak its URL: no Referer to
the papers we link to, no caching, no framing. Inline scripts run only with the per-response
CSP nonce. Bodies are capped before anything parses them, so a huge form or webhook batch
is a 413, not a memory spike.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Largest body a form may send; the sign-up form needs a few kilobytes.
FORM_BODY_LIMIT = 64 * 1024
#: Largest webhook batch; SendGrid batches are well under a megabyte.
WEBHOOK_BODY_LIMIT = 8 * 1024 * 1024


def _limit_for(path: str) -> int:
    return WEBHOOK_BODY_LIMIT if path.startswith("/webhooks/") else FORM_BODY_LIMIT


def _too_large() -> HTTPException:
    return HTTPException(413, "the request body is too large")


class SecurityMiddleware:
    """Adds the security headers and enforces the body limits."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        limit = _limit_for(scope["path"])
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large()
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                # A response that set its own CSP (an SVG chart) keeps it.
                own = {bytes(name).lower() for name, _ in headers}
                headers.extend(h for h in _headers(nonce, scope["path"]) if h[0] not in own)
                message = {**message, "headers": headers}
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response_headers = [(b"content-type", b"application/json")]
            await send_with_headers(
                {"type": "http.response.start", "status": 413, "headers": response_headers}
            )
            await send({"type": "http.response.body", "body": b'{"detail":"the request body is too large"}'})
            return
        await self.app(scope, limited_receive, send_with_headers)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _headers(nonce: str, path: str) -> list[tuple[bytes, bytes]]:
    csp = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        f"script-src 'nonce-{nonce}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    headers = [
        (b"content-security-policy", csp.encode()),
        (b"referrer-policy", b"no-referrer"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
    ]
    if not path.startswith("/static/"):
        headers.append((b"cache-control", b"no-store"))
    if path != "/subscribe":
        headers.append((b"x-robots-tag", b"noindex"))
    return headers
