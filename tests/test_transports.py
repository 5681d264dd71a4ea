"""The file and SMTP transports, against the real file system and a real SMTP server."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from datetime import date
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from newsletter.delivery.message import build_mail, new_message_id
from newsletter.delivery.transports import Outcome, Outgoing, TransportStopped, get_transport
from newsletter.digest.context import DigestItem
from newsletter.digest.render import render_digest
from newsletter.settings import Settings
from subscribers.models import Subscriber
from tests.support.papers import make_paper

DAY = date(2026, 11, 27)


def _outgoing(settings: Settings, n: int) -> list[Outgoing]:
    batch = []
    for i in range(n):
        reader = Subscriber(
            id=i + 1,
            email=f"reader{i}@example.org",
            email_key=f"reader{i}@example.org",
            interests=["graphs"],
            status="active",
        )
        rendered = render_digest(
            settings, reader, [DigestItem(make_paper(i, id=i + 1), "graphs", None)], digest_date=DAY
        )
        mail = build_mail(
            settings,
            to=reader.email,
            subscriber_id=i + 1,
            rendered=rendered,
            message_id=new_message_id(settings, f"digest.{i + 1}"),
        )
        batch.append(Outgoing(key=i + 1, mail=mail, digest_date=DAY))
    return batch


def test_file_transport_is_the_default_and_writes_one_eml_per_message(isolated_env: Path) -> None:
    settings = Settings()
    with get_transport(settings) as transport:
        assert transport.name == "file"
        results = list(transport.send(_outgoing(settings, 2)))
    assert [r.ok for r in results] == [True, True]
    files = sorted((isolated_env / "outbox" / "2026-11-27").glob("*.eml"))
    assert len(files) == 2 and not list(files[0].parent.glob("*.partial"))
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["To"] in {"reader0@example.org", "reader1@example.org"}


def test_a_message_whose_claim_lapsed_is_not_sent(isolated_env: Path) -> None:
    """The outbox's run could not renew its claims: another run may take them over."""
    settings = Settings()
    first, second = _outgoing(settings, 2)
    lapsed = Outgoing(second.key, second.mail, second.digest_date, held=lambda: False)
    with get_transport(settings) as transport:
        results = {r.key: r for r in transport.send([first, lapsed])}
    assert results[1].ok and results[2].outcome == Outcome.NOT_SENT
    assert len(list((isolated_env / "outbox" / "2026-11-27").glob("*.eml"))) == 1


def test_a_file_that_cannot_be_written_fails_only_that_message(isolated_env: Path) -> None:
    settings = Settings()
    (isolated_env / "outbox").mkdir(parents=True)
    (isolated_env / "outbox" / "2026-11-27").write_text("a file where the day's folder should be")
    with get_transport(settings) as transport:
        results = list(transport.send(_outgoing(settings, 2)))
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.FAILED]
    assert "cannot write" in (results[0].error or "")


class Recorder:
    """aiosmtpd handler that keeps every message and the sessions (connections) seen."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.sessions: set[int] = set()
        self.refuse: set[str] = set()
        self.hang_up_at_mail: set[int] = set()  # the n-th MAIL FROM: the connection drops first
        self.hang_up_after_data: set[int] = set()  # the n-th message: taken, then the line drops
        self.mails = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        self.mails += 1
        if self.mails in self.hang_up_at_mail:
            server.transport.close()
            return "421 4.3.2 going away"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.sessions.add(id(session))
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        if len(self.messages) in self.hang_up_after_data:
            server.transport.close()  # the message is taken; its "250" never arrives
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _authenticate(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"right"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    recorder = Recorder()
    port = _free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "smtp")
    monkeypatch.setenv("NEWSLETTER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(port))
    monkeypatch.setenv("NEWSLETTER_SMTP_USERNAME", "mailer")
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "right")
    try:
        yield recorder
    finally:
        controller.stop()


def test_smtp_sends_a_batch_over_one_logged_in_connection(smtp_server: Recorder) -> None:
    settings = Settings()
    with get_transport(settings) as transport:
        results = list(transport.send(_outgoing(settings, 3)))
    assert all(r.ok for r in results)
    assert len(smtp_server.messages) == 3
    assert len(smtp_server.sessions) == 1
    received = smtp_server.messages[0]
    assert received.get_content_type() == "multipart/alternative"
    assert received["List-Id"] == "Paper digest <paper-digest.localhost>"
    assert received["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/unsubscribe/")
    assert "More like this" in received.get_body(("html",)).get_content()


def test_smtp_refused_recipient_fails_only_that_message(smtp_server: Recorder) -> None:
    smtp_server.refuse.add("reader1@example.org")
    settings = Settings()
    with get_transport(settings) as transport:
        results = {r.key: r for r in transport.send(_outgoing(settings, 3))}
    assert results[1].ok and results[3].ok
    assert not results[2].ok and "550" in (results[2].error or "")


def test_smtp_wrong_password_stops_the_run_with_one_line(
    smtp_server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "wrong")
    settings = Settings()
    with get_transport(settings) as transport, pytest.raises(TransportStopped, match="refused the login"):
        list(transport.send(_outgoing(settings, 2)))
    assert smtp_server.messages == []


def _to(recorder: Recorder) -> list[str]:
    return [str(m["To"]) for m in recorder.messages]


def test_smtp_reconnects_and_sends_when_the_line_dropped_before_the_message(smtp_server: Recorder) -> None:
    smtp_server.hang_up_at_mail.add(2)  # e.g. the server closed an idle connection
    settings = Settings()
    with get_transport(settings) as transport:
        results = list(transport.send(_outgoing(settings, 3)))
    assert all(r.ok for r in results)
    assert _to(smtp_server) == ["reader0@example.org", "reader1@example.org", "reader2@example.org"]
    assert len(smtp_server.sessions) == 2


def test_smtp_never_sends_again_a_message_whose_answer_was_lost(smtp_server: Recorder) -> None:
    """The server took message 2 and hung up before saying so: sending it again could make
    a second copy, so its outcome is unknown and the outbox's in-flight policy decides."""
    smtp_server.hang_up_after_data.add(2)
    settings = Settings()
    with get_transport(settings) as transport:
        results = {r.key: r for r in transport.send(_outgoing(settings, 3))}
    assert _to(smtp_server) == ["reader0@example.org", "reader1@example.org", "reader2@example.org"]
    assert results[1].ok and results[3].ok
    assert results[2].outcome == Outcome.UNKNOWN and "unknown" in (results[2].error or "")
