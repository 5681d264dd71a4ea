"""`newsletter web` serves the site with uvicorn on the address and port given."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.web import free_port


def test_newsletter_web_serves_the_site_on_the_given_port(isolated_env: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "newsletter", "web", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        command, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "newsletter web did not start"
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        page = httpx.get(f"http://127.0.0.1:{port}/subscribe", timeout=5)
        assert page.status_code == 200 and "Email address" in page.text
    finally:
        server.terminate()
        server.wait(timeout=20)
    # NEWSLETTER_BASE_URL is still the default :8000, so the emails' links would miss this port.
    said = server.stdout.read().decode()  # type: ignore[union-attr]
    assert f"links in emails point at http://127.0.0.1:8000, but this server listens on port {port}" in said


def test_newsletter_web_help_explains_the_pages(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("web", "--help")
    assert result.exit_code == 0 and "/webhooks/sendgrid" in result.output and "--port" in result.output
