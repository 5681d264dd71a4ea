""" "More like this" / "less like this" votes: one per (subscriber, paper), undoable.

Ranking reads them as liked and disliked papers; the email's feedback links, the web page
and `newsletter subscribers vote` all write through `record_vote`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlmodel import Session, col, select

from newsletter.db import chunked
from newsletter.dbtypes import utcnow
from newsletter.errors import UserError
from newsletter.papers.models import Paper
from subscribers.models import Feedback, Subscriber

VOTES = {"up": 1, "down": -1, "clear": 0}


def record_vote(session: Session, subscriber_id: int, paper_id: int, vote: int) -> None:
    """Set the subscriber's vote on a paper: +1, −1, or 0 to remove it. Idempotent."""
    if vote not in (1, -1, 0):
        raise UserError(f"vote {vote!r} must be +1 (more like this), -1 (less) or 0 (undo)")
    if session.get(Subscriber, subscriber_id) is None:
        raise UserError(f"no subscriber with id {subscriber_id}")
    if session.get(Paper, paper_id) is None:
        raise UserError(f"no paper with id {paper_id}; see `newsletter papers list`")
    existing = session.exec(
        select(Feedback).where(Feedback.subscriber_id == subscriber_id, Feedback.paper_id == paper_id)
    ).first()
    if vote == 0:
        if existing is not None:
            session.delete(existing)
    elif existing is None:
        session.add(Feedback(subscriber_id=subscriber_id, paper_id=paper_id, vote=vote))
    elif existing.vote != vote:
        existing.vote = vote
        existing.created_at = utcnow()
        session.add(existing)
    session.flush()


def votes_for(session: Session, subscriber_ids: Sequence[int]) -> dict[int, dict[int, int]]:
    """Each subscriber's votes, subscriber id → paper id → +1/−1 (absent: no votes)."""
    out: dict[int, dict[int, int]] = defaultdict(dict)
    for chunk in chunked(subscriber_ids):
        for sid, pid, vote in session.exec(
            select(Feedback.subscriber_id, Feedback.paper_id, Feedback.vote).where(
                col(Feedback.subscriber_id).in_(chunk)
            )
        ):
            out[sid][pid] = vote
    return out
