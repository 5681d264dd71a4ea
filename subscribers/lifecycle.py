"""The double opt-in life cycle: sign-up request, confirmation, pause, unsubscribe, provider
verdicts (bounce, complaint), and a person's votes.

These are the rules every door (web form, email links, the provider's webhook) must share, so
they live beside `service.py` and use it for every write.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from newsletter.errors import UserError
from newsletter.papers.models import Paper
from subscribers import service
from subscribers.models import (
    Feedback,
    Status,
    Subscriber,
    SubscriberCreate,
    SubscriberUpdate,
)

#: How bad a status is: a provider verdict only ever moves a subscriber to a worse one, so a
#: late "unsubscribe" event cannot soften an earlier spam complaint.
_SEVERITY = {Status.UNSUBSCRIBED: 1, Status.BOUNCED: 2, Status.COMPLAINED: 3}


class ConfirmOutcome(StrEnum):
    """What a confirmation link can do, or did."""

    READY = "ready"
    CONFIRMED = "confirmed"
    ALREADY = "already-confirmed"
    STALE = "stale"


def request_signup(session: Session, data: SubscriberCreate) -> Subscriber | None:
    """Record a sign-up request; return whom to send a confirmation email, or None.

    A new address becomes a pending row. A pending one takes the newest form's preferences.
    An unsubscribed, bounced or complained one goes back to pending: only a fresh confirmation
    can make it active again. An active or paused one is left exactly as it is and gets no
    mail, because the form is public: a stranger must not be able to change someone's
    interests, nor learn from the answer that the address subscribes.
    """
    existing = service.find(session, data.email)
    if existing is None:
        return service.create(session, data.model_copy(update={"status": Status.PENDING}))
    if existing.status in (Status.ACTIVE, Status.PAUSED):
        return None
    changes = SubscriberUpdate.model_validate(data.model_dump(exclude={"email"}) | {"status": Status.PENDING})
    return service.update(session, existing, changes)


def check_confirm(subscriber: Subscriber, issued_at: datetime) -> ConfirmOutcome:
    """Whether a confirmation link issued at `issued_at` may activate this subscriber.

    A link older than the subscriber's latest change (a newer sign-up request, or an
    unsubscribe followed by a new request) is stale: it must not revive a past consent.
    Token timestamps have whole seconds, hence the comparison at second precision.
    """
    if subscriber.status in (Status.ACTIVE, Status.PAUSED):
        return ConfirmOutcome.ALREADY
    if subscriber.status != Status.PENDING or issued_at < subscriber.updated_at.replace(microsecond=0):
        return ConfirmOutcome.STALE
    return ConfirmOutcome.READY


def confirm(session: Session, subscriber: Subscriber, issued_at: datetime) -> ConfirmOutcome:
    """Activate a pending subscriber from a confirmation link issued at `issued_at`."""
    outcome = check_confirm(subscriber, issued_at)
    if outcome != ConfirmOutcome.READY:
        return outcome
    service.update(session, subscriber, SubscriberUpdate(status=Status.ACTIVE))
    return ConfirmOutcome.CONFIRMED


def set_paused(session: Session, subscriber: Subscriber, paused: bool) -> bool:
    """Pause or resume digests; only active and paused subscribers can switch. True if changed."""
    target = Status.PAUSED if paused else Status.ACTIVE
    if subscriber.status not in (Status.ACTIVE, Status.PAUSED) or subscriber.status == target:
        return False
    service.update(session, subscriber, SubscriberUpdate(status=target))
    return True


def unsubscribe(session: Session, subscriber: Subscriber) -> bool:
    """Stop all mail to this subscriber now; True if this changed their status."""
    return apply_verdict(session, subscriber, Status.UNSUBSCRIBED)


def apply_verdict(session: Session, subscriber: Subscriber, status: Status) -> bool:
    """Move a subscriber to a never-mail status unless they already have an equal or worse one."""
    current = _SEVERITY.get(subscriber.status, 0)
    if _SEVERITY[status] <= current:
        return False
    service.update(session, subscriber, SubscriberUpdate(status=status))
    return True


def lift_suppression(session: Session, subscriber: Subscriber) -> None:
    """An operator's word that a bounced address works again (the mailbox was full, or
    fixed): the reader's consent stands, so they are active again.

    Only a bounce can be lifted. An unsubscribe or a spam complaint was the person's own
    choice: only they can undo it, by signing up and confirming again.
    """
    if subscriber.status == Status.BOUNCED:
        service.update(session, subscriber, SubscriberUpdate(status=Status.ACTIVE))
        return
    if subscriber.status in (Status.UNSUBSCRIBED, Status.COMPLAINED):
        raise UserError(
            f"{subscriber.email} {'unsubscribed' if subscriber.status == Status.UNSUBSCRIBED else 'reported spam'}"
            " themselves; only they can undo that, by signing up again"
        )
    raise UserError(f"{subscriber.email} is {subscriber.status}, not suppressed")


def votes(session: Session, subscriber: Subscriber) -> list[tuple[Paper, int]]:
    """The papers this subscriber voted on, newest vote first, with the vote (+1 / -1)."""
    rows = session.exec(
        select(Paper, Feedback.vote)
        .join(Feedback, col(Feedback.paper_id) == col(Paper.id))
        .where(Feedback.subscriber_id == subscriber.id)
        .order_by(col(Feedback.created_at).desc(), col(Feedback.id).desc())
    )
    return [(paper, vote) for paper, vote in rows]
