"""Compose a day's digests: history → rank → items → plans for the outbox (or previews).

This is where the floors meet: the delivery tables say what each reader was already sent and
since when papers are new to them, the subscriber floor gives their votes, ranking picks
papers from that (it never reads the delivery tables itself), and the outbox records the
plans. Ranking runs in large chunks, because each call re-reads the candidate pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from newsletter.db import session_scope
from newsletter.dbtypes import utcnow
from newsletter.delivery import outbox
from newsletter.delivery.outbox import Plan, SendReport
from newsletter.digest.context import DigestItem
from newsletter.digest.render import render_digest
from newsletter.papers.models import Paper
from newsletter.settings import Settings
from subscribers.feedback import votes_for
from subscribers.models import Subscriber

if TYPE_CHECKING:
    from newsletter.ranking.service import Pick

#: Subscribers ranked per call (each call re-reads the candidate pool, so large chunks;
#: ranking bounds its own memory inside a call).
RANK_CHUNK = 5_000


def recommend(
    session: Session,
    settings: Settings,
    subscribers: Sequence[Subscriber],
    *,
    now: datetime | None = None,
) -> dict[int, list[Pick]]:
    """Each subscriber's next digest: new, unsent papers above min_score, best first.

    Candidates are papers first seen since the subscriber's last sent digest (else the last
    `candidate_window_days`); papers already in a non-failed delivery, or voted on, never come
    back; at most `max_papers`; an empty list is a legitimate answer.
    """
    # Imported here: ranking pulls in numpy and, once it embeds, the model; commands that
    # only read the outbox (and `--help`) should not pay for that.
    from newsletter.ranking.profiles import profile_for
    from newsletter.ranking.service import RankRequest, rank

    now = now or utcnow()
    ids = [s.id for s in subscribers if s.id is not None]
    last = outbox.last_sent(session, ids)
    window = now - timedelta(days=settings.candidate_window_days)
    since = {sid: last.get(sid, window) for sid in ids}
    sent = outbox.papers_sent(session, ids, min(since.values(), default=window))
    votes = votes_for(session, ids)
    requests = []
    for s in subscribers:
        sid = s.id or -1
        mine = votes.get(sid, {})
        profile = profile_for(
            list(s.interests),
            liked=tuple(p for p, v in mine.items() if v > 0),
            disliked=tuple(p for p, v in mine.items() if v < 0),
        )
        requests.append(
            RankRequest(profile, since.get(sid, window), sent.get(sid, set()) | set(mine), s.max_papers)
        )
    picks = rank(session, settings, requests, now=now)
    return {s.id: p for s, p in zip(subscribers, picks) if s.id is not None}


def _load_papers(session: Session, ids: Iterable[int]) -> dict[int, Paper]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {p.id: p for p in session.exec(select(Paper).where(col(Paper.id).in_(wanted))) if p.id}


def items_for(session: Session, picks: Sequence[Pick]) -> list[DigestItem]:
    """Ranking's picks, in order, as digest items with their papers loaded."""
    papers = _load_papers(session, (p.paper_id for p in picks))
    return _to_items(picks, papers)


def _to_items(picks: Iterable[Pick], papers: dict[int, Paper]) -> list[DigestItem]:
    return [
        DigestItem(
            paper=papers[p.paper_id],
            matched_interest=p.matched_interest,
            highlight=p.highlight,
            reason=p.reason,
            score=p.score,
        )
        for p in picks
        if p.paper_id in papers
    ]


def compose(
    engine: Engine,
    settings: Settings,
    subscribers: list[Subscriber],
    digest_date: date,
    report: SendReport,
    trending: list[Paper],
    now: datetime | None,
) -> None:
    """Rank and record each subscriber's digest, chunk by chunk (a dry run renders instead)."""
    for start in range(0, len(subscribers), RANK_CHUNK):
        chunk = subscribers[start : start + RANK_CHUNK]
        with session_scope(engine) as session:
            picks = recommend(session, settings, chunk, now=now)
            papers = _load_papers(session, (p.paper_id for ps in picks.values() for p in ps))
            plans = [Plan(s, _to_items(picks.get(s.id or 0, []), papers)) for s in chunk]
            if report.dry_run:
                # Nothing of a dry run is kept (new vectors included); render while the
                # session can still load the papers.
                session.rollback()
                for plan in plans:
                    _preview(settings, plan, digest_date, trending, report)
                continue
        outbox.record(engine, settings, plans, digest_date, report)


def _preview(
    settings: Settings, plan: Plan, digest_date: date, trending: list[Paper], report: SendReport
) -> None:
    subscriber = plan.subscriber
    if not plan.items and not subscriber.send_empty:
        report.skipped += 1
        return
    rendered = render_digest(settings, subscriber, plan.items, digest_date=digest_date, trending=trending)
    report.rendered += 1
    report.previews.append(
        {
            "email": subscriber.email,
            "papers": len(plan.items),
            "subject": rendered.subject,
            "html_bytes": len(rendered.html.encode()),
        }
    )
