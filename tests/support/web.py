"""Helpers for the web app's tests: a client that fails on any 5xx, CSRF tokens, the outbox,
SendGrid-style webhook signatures, and uvicorn serving the app on loopback."""

from __future__ import annotations

import base64
import email
import email.policy
import html
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from newsletter.settings import Settings
from newsletter.web import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _no_server_errors(response: httpx.Response) -> None:
    """Every request in the suite must get an answer below 500."""
    assert response.status_code < 500, (
        f"{response.request.method} {response.request.url} → {response.status_code}"
    )


def client(app: FastAPI) -> TestClient:
    """A TestClient that turns any 5xx answer into a test failure."""
    test_client = TestClient(app, raise_server_exceptions=False, follow_redirects=True)
    test_client.event_hooks = {"request": [], "response": [_no_server_errors]}
    return test_client


def csrf_token(test_client: TestClient, path: str = "/subscribe") -> str:
    """The CSRF token of the form at `path` (the GET also sets the cookie it belongs to)."""
    match = CSRF.search(test_client.get(path).text)
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def alert(page: str) -> str:
    """The text of the error box a page shows, every message in it (empty when none)."""
    match = re.search(r'class="alert error"[^>]*>(.*?)</div>', page, re.DOTALL)
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())) if match else ""


def field_errors(page: str) -> dict[str, str]:
    """Each field's message shown beside it: field name → message."""
    found = re.findall(r'<span class="field-error" id="([\w-]+)-error">([^<]*)</span>', page)
    return {name: html.unescape(text) for name, text in found}


def outbox(home: Path) -> list[EmailMessage]:
    """Every message the file transport wrote, oldest first."""
    files = sorted((home / "outbox").rglob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for path in files
    ]


def body_text(message: EmailMessage) -> str:
    """The plain-text part of a message."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def links(message: EmailMessage, kind: str) -> list[str]:
    """Every absolute link of one kind (/confirm/, /feedback/…) in the message's text part."""
    return re.findall(rf"https?://[^\s<>\"]+/{kind}/[^\s<>\"\)\]]+", body_text(message))


class WebhookSigner:
    """Signs payloads the way SendGrid's Signed Event Webhook does (ECDSA P-256, SHA-256)."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        #: What the SendGrid console shows as the verification key.
        self.public_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        """The signature and timestamp headers for `body`."""
        stamp = timestamp or str(int(time.time()))
        signature = self._key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            "Content-Type": "application/json",
        }


def free_port() -> int:
    """A TCP port nobody listens on right now (on loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: FastAPI, port: int) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1:`port` in a thread; stopped on exit, and
    failing if any request got a 5xx answer."""
    server_errors: list[str] = []

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 500:
                server_errors.append(f"{scope['method']} {scope['path']} → {message['status']}")
            await send(message)

        await app(scope, receive, watch)

    server = uvicorn.Server(
        uvicorn.Config(watched, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    assert not server_errors, server_errors


def app_on_free_port(monkeypatch: pytest.MonkeyPatch) -> tuple[int, Settings, FastAPI]:
    """A free loopback port, settings whose links point at it, and the app for them
    (serve it with `serve(app, port)` once its data is in place)."""
    port = free_port()
    monkeypatch.setenv("NEWSLETTER_BASE_URL", f"http://127.0.0.1:{port}")
    settings = Settings()
    return port, settings, create_app(settings)


# --- fixtures (import them into a test module to use them) ------------------------------------


@pytest.fixture
def signer() -> WebhookSigner:
    """A fresh key pair standing in for SendGrid's."""
    return WebhookSigner()


@pytest.fixture
def web_settings(database_url: str, monkeypatch: pytest.MonkeyPatch, signer: WebhookSigner) -> Settings:
    """Settings of a test database with the webhook key configured."""
    monkeypatch.setenv("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    return Settings()


@pytest.fixture
def app(web_settings: Settings) -> FastAPI:
    """The web app on the test database."""
    return create_app(web_settings)


@pytest.fixture
def web(app: FastAPI) -> Iterator[TestClient]:
    """A browser-like client of the app (keeps cookies; any 5xx fails the test)."""
    with client(app) as test_client:
        yield test_client
