"""The edge of ranking: load candidates and vectors, hand them to a `Ranker`, explain picks.

Callers describe each reader as a `RankRequest` (signals, the papers to leave out, since when
papers are new, how many to pick); what a reader was already sent or voted on is theirs to
gather (`jobs.compose`), so ranking never reads the delivery tables. Everything here reads
papers and vectors in bulk (IN-lists) and hands arrays to the pure ranker; there is no query
per subscriber and no Python loop over subscribers × papers. Nothing here commits: new
vectors are flushed into the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, select

from newsletter.db import chunked
from newsletter.dbtypes import utcnow
from newsletter.errors import UserError
from newsletter.papers.models import Paper
from newsletter.ranking import explain, ranker, store
from newsletter.ranking.authors import parse_name, same_person
from newsletter.ranking.base import Ranker, get_ranker
from newsletter.ranking.profiles import Profile, profile_for
from newsletter.ranking.store import phrase_key
from newsletter.settings import Settings
from subscribers.profile import author_interest, parse_interests

#: Sentence vectors of abstracts, per (model, abstract text): highlights of a paper picked for
#: thousands of subscribers are computed once per process. Keyed by the text, not the paper
#: id, so a paper whose abstract changed (a richer one merged in) never reuses stale vectors.
_SENTENCES: dict[tuple[str, str], tuple[tuple[str, ...], np.ndarray]] = {}
_SENTENCE_CACHE_LIMIT = 50_000
#: Explanations kept per candidate pool, keyed by (paper, reason, signal).
_EXPLANATION_CACHE_LIMIT = 200_000


@dataclass(frozen=True)
class Pick:
    """One paper chosen for one reader, with the reason the email shows."""

    paper_id: int
    score: float
    reason: str  # "interest" | "author" | "liked"
    matched_interest: str | None
    matched_terms: tuple[str, ...]
    highlight: str | None


def embed_missing(session: Session, settings: Settings, progress: Callable[[int], None] | None = None) -> int:
    """Embed every paper without a vector under the configured model; returns how many."""
    return store.embed_missing(session, settings, progress)


@dataclass(frozen=True)
class RankRequest:
    """One reader to rank for: their signals, which papers are new to them, what to leave out."""

    profile: Profile
    since: datetime | None  # candidates are papers first seen after this (None: all stored)
    leave_out: Collection[int]  # paper ids never to pick (already sent, voted on)
    cap: int  # at most this many picks


@dataclass
class _Pool:
    """Candidate papers loaded from the database, ordered by first_seen_at."""

    cands: ranker.Candidates
    first_seen: np.ndarray  # datetime64[us], ascending


#: Candidate pools (vectors, lexical index, neighbour graph) of recent calls, so a caller that
#: ranks 100,000 subscribers in chunks builds them once, not once per chunk.
_POOLS: dict[tuple[object, ...], ranker.Candidates] = {}
_POOL_CACHE_SIZE = 4


def _load_pool(
    session: Session, settings: Settings, since: datetime | None, now: datetime, dim: int | None
) -> _Pool:
    from newsletter.ranking import embedder, scoring

    # SQLAlchemy's own select: SQLModel's types stop at four columns.
    query = sa.select(
        col(Paper.id),
        col(Paper.upvotes),
        col(Paper.published_at),
        col(Paper.first_seen_at),
        col(Paper.modified_at),
    ).where(col(Paper.first_seen_at) <= now)
    if since is not None:
        query = query.where(col(Paper.first_seen_at) > since)
    rows = list(session.connection().execute(query.order_by(col(Paper.first_seen_at), col(Paper.id))))
    ids = [int(r[0] or 0) for r in rows]
    key = (
        settings.resolved_database_url,
        embedder.model_identity(settings),
        tuple(ids),
        max((r[4] for r in rows), default=None),
    )
    cands = _POOLS.get(key)
    if cands is None:
        cands = _build_candidates(session, settings, ids, dim)
        if len(_POOLS) >= _POOL_CACHE_SIZE:
            _POOLS.pop(next(iter(_POOLS)))
        _POOLS[key] = cands
    upvotes = np.array([r[1] or 0 for r in rows], dtype=np.float32)
    age = np.array([((now - (r[2] or r[3])).total_seconds() / 86400.0) for r in rows], dtype=np.float32)
    cands.prior = scoring.prior(upvotes, age)
    first_seen = np.array([r[3].replace(tzinfo=None) for r in rows], dtype="datetime64[us]")
    return _Pool(cands, first_seen)


def _build_candidates(
    session: Session, settings: Settings, ids: list[int], dim: int | None
) -> ranker.Candidates:
    """Texts, bylines and vectors of the papers `ids`, in that order."""
    found: dict[int, tuple[str, str, list[str]]] = {}
    for chunk in chunked(ids):
        for pid, title, abstract, authors in session.exec(
            select(Paper.id, Paper.title, Paper.abstract, Paper.authors).where(col(Paper.id).in_(chunk))
        ):
            found[pid or 0] = (title, abstract or "", list(authors or []))
    vectors = (
        store.paper_vectors(session, settings, ids, dim) if ids else np.zeros((0, dim or 1), dtype=np.float32)
    )
    return ranker.Candidates(
        ids=np.array(ids, dtype=np.int64),
        vectors=vectors,
        titles=[found[i][0] for i in ids],
        abstracts=[found[i][1] for i in ids],
        bylines=[found[i][2] for i in ids],
        prior=np.zeros(len(ids), dtype=np.float32),
    )


def _voted(session: Session, settings: Settings, ids: set[int], dim: int) -> dict[int, ranker.VotedPaper]:
    """Vectors and texts of the papers people voted on (they may be old papers)."""
    ordered = sorted(ids)
    if not ordered:
        return {}
    vectors = store.paper_vectors(session, settings, ordered, dim)
    texts: dict[int, tuple[str, str]] = {}
    for chunk in chunked(ordered):
        for pid, title, abstract in session.exec(
            select(Paper.id, Paper.title, Paper.abstract).where(col(Paper.id).in_(chunk))
        ):
            texts[pid or 0] = (title, abstract or "")
    return {pid: ranker.VotedPaper(vector, *texts[pid]) for pid, vector in zip(ordered, vectors)}


def _phrase_vectors(
    session: Session, settings: Settings, profiles: Sequence[Profile]
) -> dict[str, np.ndarray]:
    phrases = list(dict.fromkeys(x for p in profiles for x in (*p.phrases, *p.excludes)))
    if not phrases:
        return {}
    vectors = store.phrase_vectors(session, settings, phrases)
    return {phrase_key(p): v for p, v in zip(phrases, vectors)}


def rank(
    session: Session,
    settings: Settings,
    requests: Sequence[RankRequest],
    *,
    now: datetime,
    dense_highlights: bool = False,
    ranker_name: str | None = None,
) -> list[list[Pick]]:
    """Each request's picks among the papers it may still get, best first, explained.

    `dense_highlights` lets the model pick highlights that no shared word can (one profile's
    preview); a whole digest run keeps to word-chosen highlights, because encoding the
    sentences of every picked abstract would cost more than all the ranking. `ranker_name`
    picks a registered `Ranker` (default: the `ranker` setting).
    """
    profiles = [r.profile for r in requests]
    since = [r.since for r in requests]
    phrase_vecs = _phrase_vectors(session, settings, profiles)
    dim = next(iter(phrase_vecs.values())).shape[0] if phrase_vecs else None
    dated = [s for s in since if s is not None]
    earliest = min(dated) if dated and len(dated) == len(since) else None
    pool = _load_pool(session, settings, earliest, now, dim)
    cands = pool.cands
    if len(cands.ids) == 0:
        return [[] for _ in profiles]
    dim = cands.vectors.shape[1]
    voted = _voted(session, settings, {pid for p in profiles for pid in (*p.liked, *p.disliked)}, dim)
    chosen_ranker: Ranker = get_ranker(ranker_name or settings.ranker)
    # Readers share a handful of distinct `since` values (their last digest): look each up once.
    starts = {
        s: 0
        if s is None
        else int(np.searchsorted(pool.first_seen, np.datetime64(s.replace(tzinfo=None), "us"), side="right"))
        for s in set(since)
    }
    first_column = [starts[s] for s in since]
    blocked = [[cands.column[pid] for pid in r.leave_out if pid in cands.column] for r in requests]
    signals, choices = chosen_ranker.rank(
        cands,
        profiles,
        ranker.Queries(phrase_vecs, voted),
        caps=[r.cap for r in requests],
        min_score=settings.min_score,
        first_column=first_column,
        blocked=blocked,
    )
    query_vectors = {
        r: (phrase_vecs.get(phrase_key(signals.label[r])) if signals.kind[r] == "interest" else None)
        for r in {c.signal for cs in choices for c in cs if c.signal is not None}
    }
    for pid, paper in voted.items():
        if ("liked", pid) in signals.row:
            query_vectors[signals.row[("liked", pid)]] = paper.vector
    need = _need_dense_highlight(cands, signals, choices) if dense_highlights else set()
    sentence_vectors = _sentence_vectors(settings, cands, need) if need else {}
    # Thousands of readers share (interest, paper) pairs: explain each pair once.
    memo = cands.explanations
    if len(memo) > _EXPLANATION_CACHE_LIMIT:
        memo.clear()
    signal_keys = list(signals.row)  # row order
    out: list[list[Pick]] = []
    for profile, cs in zip(profiles, choices):
        picks = []
        for c in cs:
            column, score, reason, signal = c
            key = (
                column,
                reason,
                signal_keys[signal] if signal is not None else profile.authors,
                column in sentence_vectors,
            )
            shared = memo.get(key)
            if shared is None:
                shared = memo[key] = _explain(cands, signals, profile, c, query_vectors, sentence_vectors)
            picks.append(
                Pick(
                    shared.paper_id,
                    round(score, 4),
                    shared.reason,
                    shared.matched_interest,
                    shared.matched_terms,
                    shared.highlight,
                )
            )
        out.append(picks)
    return out


def _need_dense_highlight(
    cands: ranker.Candidates, signals: ranker.Signals, choices: list[list[ranker.Choice]]
) -> set[int]:
    """Picked papers whose highlight the words alone cannot choose (no sentence shares a word
    with the interest, or the interest is a liked paper): only these need sentence vectors."""
    need: set[int] = set()
    seen: set[tuple[int, int | None]] = set()
    for cs in choices:
        for c in cs:
            if (c.column, c.signal) in seen or c.signal is None:
                continue
            seen.add((c.column, c.signal))
            if signals.kind[c.signal] == "liked" or not explain.shares_words(
                signals.label[c.signal], cands.abstracts[c.column]
            ):
                need.add(c.column)
    return need


def _sentence_vectors(
    settings: Settings, cands: ranker.Candidates, columns: set[int]
) -> dict[int, np.ndarray]:
    """Sentence vectors of the picked papers' abstracts (one encode call for all of them)."""
    from newsletter.ranking import embedder

    model = embedder.model_identity(settings)
    todo = [c for c in sorted(columns) if (model, cands.abstracts[c]) not in _SENTENCES]
    if todo:
        parts = [explain.sentences(cands.abstracts[c]) for c in todo]
        flat = [s for p in parts for s in p]
        vectors = embedder.encode(settings, flat)
        if len(_SENTENCES) > _SENTENCE_CACHE_LIMIT:
            _SENTENCES.clear()
        at = 0
        for c, p in zip(todo, parts):
            _SENTENCES[(model, cands.abstracts[c])] = (p, vectors[at : at + len(p)])
            at += len(p)
    return {c: _SENTENCES[(model, cands.abstracts[c])][1] for c in columns}


def _explain(
    cands: ranker.Candidates,
    signals: ranker.Signals,
    profile: Profile,
    choice: ranker.Choice,
    query_vectors: dict[int, np.ndarray | None],
    sentence_vectors: dict[int, np.ndarray],
) -> Pick:
    c = choice.column
    title, abstract = cands.titles[c], cands.abstracts[c]
    if choice.reason == "author":
        names = [parse_name(a) for a in cands.bylines[c]]
        followed = next(
            a for a in profile.authors if (f := parse_name(a)) and any(n and same_person(f, n) for n in names)
        )
        interest, vector = author_interest(followed), None
        terms: tuple[str, ...] = ()
    else:
        assert choice.signal is not None
        interest = signals.label[choice.signal]
        vector = query_vectors.get(choice.signal)
        terms = explain.matched_terms(interest, title, abstract) if choice.reason == "interest" else ()
    return Pick(
        paper_id=int(cands.ids[c]),
        score=round(choice.score, 4),
        reason=choice.reason,
        matched_interest=interest,
        matched_terms=terms,
        highlight=explain.highlight(
            interest if choice.reason != "liked" else "",
            vector if c in sentence_vectors else None,
            abstract,
            sentence_vectors.get(c),
        ),
    )


def recommend_for_interests(
    session: Session,
    settings: Settings,
    interests: list[str],
    *,
    limit: int = 10,
    since: datetime | None = None,
) -> list[Pick]:
    """The papers a profile of `interests` would get now (since `since`, else all stored)."""
    if not 1 <= limit <= 1000:
        raise UserError(f"limit {limit} is outside 1–1000")
    profile = profile_for(parse_interests(interests))
    if profile.empty:
        raise UserError("only exclusions given; add at least one interest or `author: Name`")
    request = RankRequest(profile, since, (), limit)
    return rank(session, settings, [request], now=utcnow(), dense_highlights=True)[0]
