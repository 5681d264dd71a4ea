"""Building the RFC 5322 message every transport sends.

One builder for every transport, so the file, SMTP and SendGrid paths carry the same headers:
From / Reply-To from settings, a Message-ID fixed before sending (a resend reuses it, which
lets receivers collapse duplicates), the RFC 2369 / RFC 8058 list headers Gmail and Yahoo
require of bulk senders, and multipart/alternative with the text part first.
"""

from __future__ import annotations

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


def build_message(
    settings: Settings,
    *,
    to: str,
    subscriber_id: int,
    rendered: RenderedEmail,
    message_id: str,
    list_mail: bool = True,
) -> EmailMessage:
    """The complete message; `list_mail` adds the list headers (digests, not confirmations)."""
    msg = EmailMessage()
    msg["From"] = settings.from_address
    msg["To"] = Address(addr_spec=to)
    if settings.reply_to:
        msg["Reply-To"] = settings.reply_to
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id
    if list_mail:
        one_click = link(settings, Purpose.UNSUBSCRIBE, subscriber_id)
        msg["List-Unsubscribe"] = f"<{one_click}>, <{unsubscribe_mailto(settings, subscriber_id)}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["List-Id"] = f"Paper digest <{settings.list_id}>"
    # Quoted-printable chosen up front: the library would otherwise encode each part twice
    # (QP and base64) to pick the shorter, the costliest step of building a digest.
    msg.set_content(rendered.text, cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="base64")
    return msg
