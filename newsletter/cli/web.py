"""`newsletter web`: the subscriber-facing site (sign-up, links from emails, SendGrid webhook)."""

from __future__ import annotations

from typing import Annotated

import typer

from newsletter.cli.common import console, warn_about_links
from newsletter.settings import get_settings


def web(
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 to accept outside connections.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the web app with uvicorn until Ctrl-C.

    Pages: /subscribe, and the /confirm, /preferences, /unsubscribe and /feedback links the
    emails carry (built from NEWSLETTER_BASE_URL, which must point at this server as the
    public sees it). SendGrid posts events to /webhooks/sendgrid (set
    NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY). Behind a reverse proxy on this host, client
    addresses for rate limits come from X-Forwarded-For. `newsletter serve` runs this and
    the scheduler together.
    """
    import uvicorn

    from newsletter.web import create_app

    settings = get_settings()
    app = create_app(settings)
    warn_about_links(settings, host, port)
    console.print(f"Serving {settings.base_url} on http://{host}:{port} (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, proxy_headers=True, log_level="info")
