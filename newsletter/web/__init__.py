"""The subscriber-facing web app: sign-up, confirmation, preferences, unsubscribe, feedback,
and SendGrid's event webhook.

`create_app(settings)` builds the FastAPI app; routes are thin and call `subscribers.lifecycle`,
`subscribers.service` and `newsletter.delivery.transports.sendgrid_webhook`, the same rules the CLI uses. Pages are
server-rendered Jinja templates from `templates/web/` with one stylesheet and no framework.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from newsletter.db import open_database
from newsletter.delivery.transports.sendgrid_webhook import Verifier
from newsletter.settings import Settings
from newsletter.web import admin, hooks, links, reader, signup
from newsletter.web.context import TEMPLATE_DIR, WebContext
from newsletter.web.csrf import CsrfProtection
from newsletter.web.ratelimit import RateLimiter
from newsletter.web.security import SecurityMiddleware

__all__ = ["create_app"]

_MACHINE_PATHS = ("/webhooks/", "/healthz")


def create_app(settings: Settings) -> FastAPI:
    """The web app for `settings` (opens, and for SQLite migrates, the database)."""
    context = WebContext(
        settings=settings,
        engine=open_database(settings),
        templates=Jinja2Templates(directory=TEMPLATE_DIR),
        csrf=CsrfProtection(settings),
        limiter=RateLimiter(settings),
        verifier=Verifier(settings),
    )
    app = FastAPI(title="Paper Digest", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = context
    app.add_middleware(SecurityMiddleware)
    app.include_router(signup.router)
    app.include_router(links.router)
    app.include_router(reader.router)
    app.include_router(hooks.router)
    admin.install(app)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/subscribe", status_code=303)

    @app.get("/static/site.css", include_in_schema=False)
    def stylesheet() -> FileResponse:
        return FileResponse(TEMPLATE_DIR / "site.css", headers={"cache-control": "max-age=3600"})

    @app.get("/static/favicon.svg", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(
            TEMPLATE_DIR / "favicon.svg",
            media_type="image/svg+xml",
            headers={"cache-control": "max-age=86400"},
        )

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon_ico() -> RedirectResponse:
        """Browsers ask for /favicon.ico by themselves; ours is an SVG."""
        return RedirectResponse("/static/favicon.svg", status_code=301)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 400
        detail = exc.detail if isinstance(exc, HTTPException) else "the request is not valid"
        if request.url.path.startswith(_MACHINE_PATHS):
            return JSONResponse({"reason": detail}, status_code=status, headers=getattr(exc, "headers", None))
        titles = {404: "Page not found", 405: "Not allowed", 413: "Too much data"}
        return context.message(
            request,
            status,
            titles.get(status, "Something is wrong with that request"),
            str(detail).capitalize().rstrip(".") + ".",
            signup=True,
        )

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, http_error)
    return app
