"""A real HTTP server on 127.0.0.1 that serves recorded responses and scripted behaviour.

Sources are tested against real sockets and real response bytes: the recordings in
../shared/fixtures (see fixtures/SOURCES.md; the lukasschwab files are JSON wrappers holding
`status_code` and the latin-1-decoded `body`), re-paged or edited only where a test needs a
behaviour no recording shows (paging, a newer version), in arXiv's own Atom format.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.support.requirements import shared

ATOM_TYPE = "application/atom+xml; charset=utf-8"
RSS_TYPE = "application/rss+xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    """One scripted response."""

    status: int
    body: bytes
    content_type: str = "text/plain"
    delay: float = 0.0  # seconds to wait before answering (to provoke client timeouts)


@dataclass(frozen=True)
class Request:
    """What the server saw: path, query parameters, arrival time (monotonic)."""

    path: str
    query: dict[str, str]
    at: float


Handler = Callable[[Request], Reply]


@dataclass
class RecordedServer:
    """Routes by path; a route is a handler or a list of replies served in turn (last repeats)."""

    base_url: str = ""
    requests: list[Request] = field(default_factory=list)
    _routes: dict[str, Handler | list[Reply]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def route(self, path: str, answer: Handler | Reply | list[Reply]) -> str:
        """Serve `answer` at `path`; returns the full URL."""
        self._routes[path] = [answer] if isinstance(answer, Reply) else answer
        return self.url(path)

    def url(self, path: str) -> str:
        return self.base_url + path

    def seen(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def answer(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            route = self._routes.get(request.path)
            if route is None:
                return Reply(404, b"not found")
            if callable(route):
                return route(request)
            return route.pop(0) if len(route) > 1 else route[0]


def _handler_class(server: RecordedServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            request = Request(parts.path, dict(parse_qsl(parts.query)), time.monotonic())
            reply = server.answer(request)
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    return _Handler


@contextmanager
def recorded_server() -> Iterator[RecordedServer]:
    """Start a server on a free loopback port; it stops when the block ends."""
    server = RecordedServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(server))
    httpd.daemon_threads = True
    server.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# --- recordings -------------------------------------------------------------------------


def recording(relative: str) -> Reply:
    """A recorded response from ../shared/fixtures, as the origin server sent it."""
    path = shared(f"fixtures/{relative}")
    if path.suffix == ".xml":
        kind = RSS_TYPE if "<rss" in path.read_text()[:500] else ATOM_TYPE
        return Reply(200, path.read_bytes(), kind)
    data = json.loads(path.read_text())
    if isinstance(data, dict) and {"status_code", "body"} <= data.keys():  # lukasschwab wrapper
        return Reply(data["status_code"], data["body"].encode("latin-1"), ATOM_TYPE)
    return Reply(200, path.read_bytes(), JSON_TYPE)


def arxiv_entries(relative: str) -> list[str]:
    """The `<entry>…</entry>` blocks of a recorded arXiv API feed, verbatim."""
    return re.findall(r"  <entry>.*?</entry>\n", recording(relative).body.decode("utf-8"), re.S)


def arxiv_feed(entries: list[str], *, total: int, start: int) -> bytes:
    """An arXiv API feed around `entries`, in the exact header format of the 2026 recordings."""
    head = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">\n'
        "  <id>https://arxiv.org/api/aUxZgisiywCgN2ngxVHX4keWGco</id>\n"
        f"  <title>arXiv Query: search_query=cat:cs.AI OR cat:cs.LG&amp;id_list=&amp;start={start}"
        f"&amp;max_results={len(entries)}</title>\n"
        "  <updated>2026-07-13T14:09:59Z</updated>\n"
        f"  <opensearch:itemsPerPage>{len(entries)}</opensearch:itemsPerPage>\n"
        f"  <opensearch:totalResults>{total}</opensearch:totalResults>\n"
        f"  <opensearch:startIndex>{start}</opensearch:startIndex>\n"
    )
    return (head + "".join(entries) + "</feed>\n").encode("utf-8")


def arxiv_pages(entries: list[str]) -> Handler:
    """The arXiv API paging over `entries` by the request's `start` and `max_results`."""

    def page(request: Request) -> Reply:
        start = int(request.query.get("start", 0))
        size = int(request.query.get("max_results", 10))
        body = arxiv_feed(entries[start : start + size], total=len(entries), start=start)
        return Reply(200, body, ATOM_TYPE)

    return page
