"""What every transport sends: one `Mail`, and its RFC 5322 form for those that need one.

One builder for every transport, so the file, SMTP and SendGrid paths carry the same headers:
From / Reply-To from settings, a Message-ID fixed before sending (a resend reuses it, which
lets receivers collapse duplicates), the RFC 2369 / RFC 8058 list headers Gmail and Yahoo
require of bulk senders, and the text part before the HTML one.

`Mail` keeps the parts as they are; `Mail.as_message()` builds the MIME message (what the
file and SMTP transports write). SendGrid's API takes the parts as JSON, so the SendGrid
transport never builds MIME: with the standard library's `email` package, building one
digest's MIME message cost more than rendering it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import quote

from newsletter.digest.render import RenderedEmail
from newsletter.settings import Settings
from newsletter.tokens import Purpose, link, make_token


def sender_domain(settings: Settings) -> str:
    """The domain of the From address (Message-IDs and the default unsubscribe mailbox)."""
    return parseaddr(settings.from_address)[1].rpartition("@")[2] or "localhost"


def new_message_id(settings: Settings, tag: str) -> str:
    """A globally unique Message-ID such as `<…digest-42@example.org>`."""
    return make_msgid(idstring=tag, domain=sender_domain(settings))


def unsubscribe_mailto(settings: Settings, subscriber_id: int) -> str:
    """The mailto: fallback of List-Unsubscribe, carrying a signed token in its subject."""
    mailbox = settings.unsubscribe_mailto or f"unsubscribe@{sender_domain(settings)}"
    token = make_token(settings, Purpose.UNSUBSCRIBE, subscriber_id)
    return f"mailto:{mailbox}?subject={quote('unsubscribe ' + token)}"


@dataclass(frozen=True)
class Mail:
    """One email as parts: addresses, subject, the extra headers we set, text and HTML."""

    sender: str  # "Name <address>" as configured
    to: str
    subject: str
    text: str
    html: str
    message_id: str
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # List-Unsubscribe, List-Id, …

    def as_message(self) -> EmailMessage:
        """The RFC 5322 message: multipart/alternative, text first."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = Address(addr_spec=self.to)
        if self.reply_to:
            msg["Reply-To"] = self.reply_to
        msg["Subject"] = self.subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = self.message_id
        for name, value in self.headers.items():
            msg[name] = value
        # Quoted-printable chosen up front: the library would otherwise encode each part twice
        # (QP and base64) to pick the shorter. HTML in base64: C-fast, and QP was the slowest step.
        msg.set_content(self.text, cte="quoted-printable")
        msg.add_alternative(self.html, subtype="html", cte="base64")
        return msg


def build_mail(
    settings: Settings,
    *,
    to: str,
    subscriber_id: int,
    rendered: RenderedEmail,
    message_id: str,
    list_mail: bool = True,
) -> Mail:
    """The mail for one reader; `list_mail` adds the list headers (digests, not confirmations)."""
    headers = {}
    if list_mail:
        one_click = link(settings, Purpose.UNSUBSCRIBE, subscriber_id)
        headers["List-Unsubscribe"] = f"<{one_click}>, <{unsubscribe_mailto(settings, subscriber_id)}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        headers["List-Id"] = f"Paper digest <{settings.list_id}>"
    return Mail(
        sender=settings.from_address,
        to=to,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id,
        reply_to=settings.reply_to,
        headers=headers,
    )
