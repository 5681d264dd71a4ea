"""A SendGrid-compatible mail/send server on 127.0.0.1 for tests and benchmarks.

Every request body is validated against the official OpenAPI spec
(../shared/specs/sendgrid/tsg_mail_v3.json, the request-body schema of POST /v3/mail/send,
$refs resolved with `referencing`); an invalid body gets SendGrid's 400 error shape and is
kept in `invalid`, so a test can assert that nothing we sent broke the contract.

A test scripts the answers with `script(body, attempt) -> Reply | None`, where `attempt`
counts requests for the same `custom_args.delivery_id` (1 = first): 202 (the default), 429
with X-RateLimit-Reset, 500, 400, 401, a hang until `release()` / `stop()`, a wait for an
event before answering, or one of the two faults a network adds:

- `drop`: the connection is closed before the message is accepted (the provider never took it);
- `cut`: the message is accepted, then its answer is cut short after `cut` bytes (negative:
  all but the last `-cut`), so the sender may not know it went out (`cut_short` lists these);
- `late`: the message is accepted, and answered only after `late` seconds (past a timeout).

Messages answered 202 are recorded in `accepted`. Connections are kept alive between
requests, as api.sendgrid.com does. Standalone (`python -m tests.support.sendgrid_server`) it
answers 202 to everything and prints its URL: the benchmark runs it in its own process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.support.requirements import shared

SPEC_URI = "urn:sendgrid:tsg_mail_v3"
BODY_POINTER = "#/components/requestBodies/PostMailSend/content/application~1json/schema"
#: A hung request is released after this long at most, so no test can wait forever.
MAX_HANG_SECONDS = 60.0


@dataclass(frozen=True)
class Reply:
    """How the server answers one request."""

    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    message: str = ""
    wait: threading.Event | None = None  # answer (as scripted) only once this is set
    drop: bool = False  # close the connection without taking the message
    cut: int | None = None  # take the message, send only this many bytes of the answer (<0: all but)
    late: float = 0.0  # take the message, answer only after this many seconds


def rate_limited(seconds: float = 1.0) -> Reply:
    """429 with the reset time `seconds` from now, as SendGrid sends it."""
    reset = int(time.time() + seconds + 0.999)
    return Reply(
        429, {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    )


def mail_send_validator(spec_path: Path) -> Draft202012Validator:
    """A validator for the POST /v3/mail/send request body of the spec at `spec_path`."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    registry = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": SPEC_URI + BODY_POINTER}, registry=registry)


def delivery_id(body: dict[str, Any]) -> str | None:
    """The delivery id our transport puts in the first personalization's custom_args."""
    for personalization in body.get("personalizations") or []:
        value = (personalization.get("custom_args") or {}).get("delivery_id")
        if value is not None:
            return str(value)
    return None


class SendGridServer:
    """Start with `with SendGridServer(spec) as server:`; `server.url` is the API host."""

    def __init__(
        self,
        spec_path: Path,
        *,
        api_key: str = "SG.test-key",
        script: Callable[[dict[str, Any], int], Reply | None] | None = None,
    ) -> None:
        self.validator = mail_send_validator(spec_path)
        self.api_key = api_key
        self.script = script
        self.accepted: list[dict[str, Any]] = []
        self.sandboxed: list[dict[str, Any]] = []
        self.invalid: list[tuple[dict[str, Any], list[str]]] = []
        self.statuses: Counter[int] = Counter()
        self.attempts: Counter[str] = Counter()
        self.arrivals: list[tuple[float, str, int]] = []  # (time, delivery id, attempt)
        self.cut_short: Counter[str] = Counter()  # accepted, answer cut: the sender cannot know
        self.dropped: Counter[str] = Counter()  # connection closed before accepting
        self.hanging = 0
        self.connections = 0  # TCP connections accepted (keep-alive reuses them)
        self.validate = True
        self._lock = threading.Lock()
        self._release = threading.Event()
        ThreadingHTTPServer.request_queue_size = 128  # the default backlog of 5 stalls bursts of connects
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The host to configure as NEWSLETTER_SENDGRID_HOST."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def recipients(self) -> Counter[str]:
        """How many accepted messages each address got."""
        with self._lock:
            return Counter(
                to["email"] for body in self.accepted for p in body["personalizations"] for to in p["to"]
            )

    def release(self) -> None:
        """Let every hung request finish (they then get a 500)."""
        self._release.set()

    def start(self) -> SendGridServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> SendGridServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _answer(
        self, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any] | None, Reply]:
        """(status, headers, JSON payload, the scripted reply) for one request."""
        plain = Reply()
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return (
                401,
                {},
                {
                    "errors": [
                        {
                            "message": "The provided authorization grant is invalid, expired, or revoked",
                            "field": None,
                        }
                    ]
                },
                plain,
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {}, {"errors": [{"message": "Bad Request", "field": None}]}, plain
        if self.validate:
            errors = [
                f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                for e in self.validator.iter_errors(body)
            ]
            if errors:
                with self._lock:
                    self.invalid.append((body, errors))
                return 400, {}, {"errors": [{"message": m, "field": None} for m in errors]}, plain
        key = delivery_id(body) or ""
        with self._lock:
            self.attempts[key] += 1
            attempt = self.attempts[key]
            self.arrivals.append((time.time(), key, attempt))
        reply = (self.script(body, attempt) if self.script else None) or Reply()
        if reply.hang or reply.wait is not None:
            with self._lock:
                self.hanging += 1
            (reply.wait or self._release).wait(MAX_HANG_SECONDS)
            with self._lock:
                self.hanging -= 1
            if reply.hang:
                return 500, {}, {"errors": [{"message": "released from hang", "field": None}]}, reply
        if reply.drop:
            with self._lock:
                self.dropped[key] += 1
            return 0, {}, None, reply
        if reply.status in (200, 202):
            sandbox = ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable")
            with self._lock:
                (self.sandboxed if sandbox else self.accepted).append(body)
                if reply.cut is not None:
                    self.cut_short[key] += 1
            if reply.late:
                time.sleep(reply.late)
            # A cut answer carries a body, so a cut can fall after the status and headers too.
            payload = {"accepted": key} if reply.cut is not None else None
            return (200 if sandbox else 202), {"X-Message-Id": uuid.uuid4().hex}, payload, reply
        message = reply.message or {429: "too many requests", 400: "bad request"}.get(reply.status, "error")
        return reply.status, reply.headers, {"errors": [{"message": message, "field": None}]}, reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server.connections += 1

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = Reply()
                if self.path.rstrip("/") != "/v3/mail/send":
                    status, headers, payload = 404, {}, {"errors": [{"message": "not found"}]}
                else:
                    lowered = {k.lower(): v for k, v in self.headers.items()}
                    status, headers, payload, reply = server._answer(lowered, raw)
                if reply.drop:
                    self._abort()
                    return
                with server._lock:
                    server.statuses[status] += 1
                data = json.dumps(payload).encode() if payload is not None else b""
                lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
                lines += [f"{name}: {value}" for name, value in headers.items()]
                lines += ["Content-Type: application/json", f"Content-Length: {len(data)}", "", ""]
                answer = "\r\n".join(lines).encode("latin-1") + data
                try:
                    if reply.cut is not None:
                        self.wfile.write(answer[: reply.cut])
                        self.wfile.flush()
                        self._abort()
                        return
                    self.wfile.write(answer)
                except OSError:  # the client gave up (timed out) while we hung: fine
                    self.close_connection = True

            def _abort(self) -> None:
                """Close the connection at once (what a crash or a network cut looks like)."""
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

        return Handler


def main() -> None:
    """Serve 202s (validating every body) until killed; print the URL on the first line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("--api-key", default="SG.test-key")
    parser.add_argument("--no-validate", action="store_true")
    args = parser.parse_args()
    server = SendGridServer(args.spec, api_key=args.api_key).start()
    server.validate = not args.no_validate
    print(server.url, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(1)
    finally:
        server.stop()
        print(f"accepted {len(server.accepted)} invalid {len(server.invalid)}", file=sys.stderr)


@pytest.fixture
def sendgrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[SendGridServer]:
    """A running server, with NEWSLETTER_TRANSPORT=sendgrid pointed at it (fast retries)."""
    with SendGridServer(shared("specs/sendgrid/tsg_mail_v3.json")) as server:
        monkeypatch.setenv("NEWSLETTER_TRANSPORT", "sendgrid")
        monkeypatch.setenv("NEWSLETTER_SENDGRID_API_KEY", server.api_key)
        monkeypatch.setenv("NEWSLETTER_SENDGRID_HOST", server.url)
        monkeypatch.setenv("NEWSLETTER_SENDGRID_BACKOFF_SECONDS", "0.01")
        monkeypatch.setenv("NEWSLETTER_SENDGRID_TIMEOUT", "1")
        yield server


if __name__ == "__main__":
    main()
