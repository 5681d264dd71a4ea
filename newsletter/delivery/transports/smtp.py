"""SMTP transport: one connection (STARTTLS or SSL, optional login), opened once and reused.

Opening a TLS session and logging in per message is what makes naive senders slow and gets
them throttled, so the connection is opened on the first message and kept until `close()`;
one worker sends on it, message after message, while the outbox renders the next ones.

A message is sent as its three SMTP steps, because the step at which a connection drops
decides whether sending again is safe. A server takes a message only when it answers the
end of DATA, so a drop during MAIL FROM or RCPT TO (typically: the server closed an idle
connection) means it has nothing: reconnect and send, once. A drop during DATA may come after
the server took the message, so the outcome is unknown and the message is not sent again
here (the outbox's in-flight policy decides). A refused recipient fails only that message;
a bad login stops the run.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from email.policy import SMTP, SMTPUTF8
from email.utils import parseaddr

from newsletter.delivery.transports import (
    Outcome,
    Outgoing,
    SendResult,
    Transport,
    TransportStopped,
    unknown_outcome,
)
from newsletter.settings import Settings


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


class _Refused(Exception):
    """The server refused the message at MAIL FROM or RCPT TO (a permanent answer)."""


class SMTPTransport(Transport):
    """Sends through NEWSLETTER_SMTP_HOST:PORT with the configured security and login."""

    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
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
            conn.ehlo_or_helo_if_needed()
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

    def _envelope(self, conn: smtplib.SMTP, sender: str, recipient: str, international: bool) -> None:
        """MAIL FROM and RCPT TO; raises _Refused on a refusal, connection errors as they come."""
        if international and not conn.has_extn("smtputf8"):
            raise _Refused("SMTP: the server does not accept international addresses (SMTPUTF8)")
        options = ["SMTPUTF8", "BODY=8BITMIME"] if international else []
        code, reply = conn.mail(sender, options)
        if code == 250:
            code, reply = conn.rcpt(recipient)
            if code in (250, 251):
                return
        with contextlib.suppress(smtplib.SMTPException, OSError):
            conn.rset()
        raise _Refused(f"SMTP: {code} {_text(reply)}")

    def _ready(self, sender: str, recipient: str, international: bool) -> smtplib.SMTP:
        """A connection on which MAIL FROM and RCPT TO were accepted. If a kept connection
        drops first, the server has nothing of this message yet: reconnect, once."""
        if self._conn is not None:
            try:
                self._envelope(self._conn, sender, recipient, international)
                return self._conn
            except (smtplib.SMTPServerDisconnected, OSError):
                self._drop()
        self._conn = self._connect()
        self._envelope(self._conn, sender, recipient, international)
        return self._conn

    def deliver(self, item: Outgoing) -> SendResult:
        sender = parseaddr(item.mail.sender)[1]
        recipient = item.mail.to
        international = not (sender + recipient).isascii()
        data = item.message.as_bytes(policy=SMTPUTF8 if international else SMTP)
        try:
            conn = self._ready(sender, recipient, international)
        except _Refused as exc:
            return SendResult(item.key, Outcome.FAILED, error=str(exc))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            return SendResult(item.key, Outcome.FAILED, error=f"SMTP: {exc}")
        try:
            conn.data(data)
        except smtplib.SMTPDataError as exc:
            return SendResult(
                item.key, Outcome.FAILED, error=f"SMTP: {exc.smtp_code} {_text(exc.smtp_error)}"
            )
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()  # during DATA: the server may have taken it, so it is not sent again
            return SendResult(item.key, Outcome.UNKNOWN, error=unknown_outcome(exc))
        return SendResult(item.key, Outcome.SENT, provider_id=item.mail.message_id)

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        super().close()
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            self._conn = None
