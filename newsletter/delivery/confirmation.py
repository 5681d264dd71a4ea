"""The double-opt-in email: the only mail a pending address ever gets, a few times a day at most.

A sign-up form can be abused to mail-bomb a stranger's address, so the cap is kept in the
database (`ConfirmationEmail` rows), where every web process and restart sees it — not in a
process's memory.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, func, select

from newsletter.dbtypes import utcnow
from newsletter.delivery.message import build_mail, new_message_id
from newsletter.delivery.models import ConfirmationEmail
from newsletter.delivery.transports import Outgoing, get_transport
from newsletter.digest.render import render_confirmation
from newsletter.settings import Settings
from subscribers.models import Status, Subscriber


def confirmations_today(session: Session, subscriber_id: int) -> int:
    """Confirmation emails sent to this subscriber in the last 24 hours."""
    since = utcnow() - timedelta(days=1)
    return session.exec(
        select(func.count()).where(
            ConfirmationEmail.subscriber_id == subscriber_id,
            col(ConfirmationEmail.sent_at) >= since,
        )
    ).one()


def send_confirmation(session: Session, settings: Settings, subscriber: Subscriber) -> bool:
    """Send the confirmation email now; False when held back (not pending, or over the cap).

    The row counting against the cap is added to the caller's session, so it commits with
    the caller's transaction.
    """
    assert subscriber.id is not None
    if subscriber.status != Status.PENDING:
        return False
    if confirmations_today(session, subscriber.id) >= settings.confirmations_per_day:
        return False
    message_id = new_message_id(settings, f"confirm.{subscriber.id}")
    mail = build_mail(
        settings,
        to=subscriber.email,
        subscriber_id=subscriber.id,
        rendered=render_confirmation(settings, subscriber),
        message_id=message_id,
        list_mail=False,
    )
    now = utcnow()
    with get_transport(settings) as transport:
        results = list(transport.send([Outgoing(key=0, mail=mail, digest_date=now.date())]))
    if not results or not results[0].ok:
        return False
    session.add(ConfirmationEmail(subscriber_id=subscriber.id, sent_at=now, message_id=message_id))
    session.flush()
    return True
