"""A person's data across every floor: "download my data".

Each floor exports what it stores about a subscriber (their profile and votes, their
digests, the provider's events about their mail); this module puts the pieces together, so
no floor has to read another floor's tables.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from newsletter.delivery import events, outbox
from subscribers import lifecycle, service
from subscribers.models import Subscriber


def export(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """Everything stored about one person, as plain JSON-ready data."""
    assert subscriber.id is not None
    return {
        "subscriber": service.public(subscriber),
        "feedback": [
            {"paper_id": paper.id, "title": paper.title, "vote": vote}
            for paper, vote in lifecycle.votes(session, subscriber)
        ],
        "deliveries": outbox.history(session, subscriber.id),
        "mail_events": events.history(session, subscriber.id),
    }
