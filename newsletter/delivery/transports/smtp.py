"""SMTP transport: one connection per batch (STARTTLS or SSL, optional login), reused.

Opening a TLS session and logging in per message is what makes naive senders slow and gets
them throttled, so the connection is opened on the first message and kept until `close()`.
A refused recipient fails only that message; a bad login stops the run.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Callable, Iterator, Sequence

from newsletter.delivery.transports import (
    Outgoing,
    SendResult,
    Transport,
    TransportStopped,
    _always,
)
from newsletter.settings import Settings


class SMTPTransport(Transport):
    """Sends through NEWSLETTER_SMTP_HOST:PORT with the configured security and login."""

    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        timeout = s.http_timeout
        try:
            if s.smtp_security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.smtp_host, s.smtp_port, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=timeout)
                if s.smtp_security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                conn.login(s.smtp_username, password)
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportStopped(
                f"the SMTP server refused the login ({exc.smtp_code}); "
                "check NEWSLETTER_SMTP_USERNAME and NEWSLETTER_SMTP_PASSWORD"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportStopped(
                f"cannot reach the SMTP server {s.smtp_host}:{s.smtp_port} ({exc}); "
                "check NEWSLETTER_SMTP_HOST, NEWSLETTER_SMTP_PORT and NEWSLETTER_SMTP_SECURITY"
            ) from None
        return conn

    def _send_one(self, item: Outgoing) -> None:
        if self._conn is None:
            self._conn = self._connect()
        try:
            self._conn.send_message(item.message)
        except smtplib.SMTPServerDisconnected:
            # The server dropped an idle connection: reconnect once, then let errors surface.
            self._conn = self._connect()
            self._conn.send_message(item.message)

    def send(
        self, batch: Sequence[Outgoing], claim: Callable[[Outgoing], bool] = _always
    ) -> Iterator[SendResult]:
        for item in batch:
            if not claim(item):
                continue
            try:
                self._send_one(item)
            except TransportStopped as exc:
                yield SendResult(key=item.key, ok=False, error=exc.message, attempted=False)
                raise
            except (smtplib.SMTPException, OSError) as exc:
                yield SendResult(key=item.key, ok=False, error=f"SMTP: {exc}")
                continue
            yield SendResult(key=item.key, ok=True, provider_id=str(item.message["Message-ID"]))

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            self._conn = None
