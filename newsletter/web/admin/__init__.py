"""The admin web app (/admin): operator login, a dashboard of charts, subscribers, deliveries
and the day's papers.

The top floor's room beside the subscriber pages: it reads every floor below (jobs.metrics,
the outbox, subscribers, papers) and nothing below imports it. `install(app)` adds its
routes and the LoginRequired answer to the FastAPI app `create_app` builds.
"""

from __future__ import annotations

from fastapi import FastAPI

from newsletter.web.admin import auth, pages

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the admin routes (login first, then the pages) and the not-logged-in answer."""
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.add_exception_handler(auth.LoginRequired, auth.login_required)
