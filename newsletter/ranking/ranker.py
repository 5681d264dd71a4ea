"""The pure ranking core: candidates + profiles + vectors in, chosen papers out.

No database, no model: `service` gathers the arrays, this module does the arithmetic. Each
distinct signal (phrase, exclusion, voted paper) is scored against every candidate once;
profiles are then ranked in chunks of `CHUNK`, so memory stays bounded however many there are.
`HybridRanker` is the default `Ranker` (see `base`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse

from newsletter.ranking import lexical, scoring, select
from newsletter.ranking.authors import AuthorIndex
from newsletter.ranking.base import Ranker
from newsletter.ranking.profiles import Profile
from newsletter.ranking.store import paper_text, phrase_key

#: Profiles ranked together: ~100 MB of temporaries at 2,000 candidates.
CHUNK = 512
#: Signal rows kept per candidate pool (8 KB each at 2,000 candidates: ~160 MB at most).
ROW_CACHE_LIMIT = 20_000
#: Largest pool whose N × N cosine matrix is kept for MMR (4,096² float32 = 64 MB); above
#: it MMR computes the cosines it needs per chunk instead.
GRAM_LIMIT = 4_096
#: Added to the score of a paper by a followed author, so it always comes first.
AUTHOR_BOOST = 10.0


@dataclass
class Candidates:
    """The papers that may be picked, as arrays (column j = paper ids[j])."""

    ids: np.ndarray
    vectors: np.ndarray
    titles: list[str]
    abstracts: list[str]
    bylines: list[list[str]]
    prior: np.ndarray

    @cached_property
    def texts(self) -> list[str]:
        return [paper_text(t, a) for t, a in zip(self.titles, self.abstracts)]

    @cached_property
    def index(self) -> lexical.Index:
        # The title counts twice (a poor man's BM25F): a term in the title is what the paper
        # is about; the same term once in the abstract may be a passing mention.
        return lexical.build_index([f"{t}. {t}. {a}" for t, a in zip(self.titles, self.abstracts)])

    @cached_property
    def authors(self) -> AuthorIndex:
        return AuthorIndex(self.bylines)

    @cached_property
    def neighbours(self) -> sparse.csr_matrix:
        return scoring.neighbour_matrix(self.vectors, scoring.WEIGHTS.neighbours)

    @cached_property
    def gram(self) -> np.ndarray | None:
        """Cosines between candidates, for MMR's redundancy term (None for a huge pool)."""
        if len(self.ids) > GRAM_LIMIT:
            return None
        return (self.vectors @ self.vectors.T).astype(np.float32, copy=False)

    @cached_property
    def rows(self) -> dict[tuple[object, ...], tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Scored signal rows kept with the pool: callers ranking in chunks score each
        distinct phrase once."""
        return {}

    @cached_property
    def explanations(self) -> dict[tuple[object, ...], Any]:
        """Explanations of (paper, signal) pairs, shared by every reader and call (service)."""
        return {}

    @cached_property
    def column(self) -> dict[int, int]:
        return {int(pid): j for j, pid in enumerate(self.ids)}


@dataclass(frozen=True)
class VotedPaper:
    """A liked or disliked paper: its vector, and its text for the lexical match."""

    vector: np.ndarray
    title: str
    abstract: str


@dataclass(frozen=True)
class Queries:
    """The query vectors the edge looked up: phrase key → vector, voted paper id → paper."""

    phrases: Mapping[str, np.ndarray]
    voted: Mapping[int, VotedPaper]


@dataclass
class Signals:
    """Every distinct signal scored against every candidate (rows), and what each row is."""

    fused: np.ndarray  # rows × N
    dense: np.ndarray  # rows × N plain cosines (disliked papers use these)
    vectors: np.ndarray  # rows × dim: each signal's query vector (for profile norms)
    row: dict[tuple[str, object], int] = field(default_factory=dict)
    label: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)


def build_signals(
    cands: Candidates,
    profiles: Sequence[Profile],
    phrase_vectors: Mapping[str, np.ndarray],
    voted: Mapping[int, VotedPaper],
    weights: scoring.Weights = scoring.WEIGHTS,
) -> Signals:
    """Score each distinct phrase, exclusion and voted paper against all candidates."""
    keys: dict[tuple[str, object], str] = {}
    for p in profiles:
        for phrase in p.phrases:
            keys.setdefault(("interest", phrase_key(phrase)), phrase)
        for phrase in p.excludes:
            keys.setdefault(("exclude", phrase_key(phrase)), phrase)
        for pid in p.liked:
            if pid in voted:
                keys.setdefault(("liked", pid), voted[pid].title)
        for pid in p.disliked:
            if pid in voted:
                keys.setdefault(("disliked", pid), voted[pid].title)
    order = list(keys)
    fresh = [key for key in order if (key, weights) not in cands.rows]
    if fresh:
        fused, dense, vectors = _score_signals(cands, fresh, keys, phrase_vectors, voted, weights)
        if len(cands.rows) + len(fresh) > ROW_CACHE_LIMIT:
            cands.rows.clear()
        for r, key in enumerate(fresh):
            cands.rows[(key, weights)] = (fused[r], dense[r], vectors[r])
    n, dim = cands.vectors.shape
    fused_all = np.empty((len(order), n), dtype=np.float32)
    dense_all = np.empty((len(order), n), dtype=np.float32)
    vectors_all = np.empty((len(order), dim), dtype=np.float32)
    for r, key in enumerate(order):
        fused_all[r], dense_all[r], vectors_all[r] = cands.rows[(key, weights)]
    return Signals(
        fused=fused_all,
        dense=dense_all,
        vectors=vectors_all,
        row={key: r for r, key in enumerate(order)},
        label=[keys[key] for key in order],
        kind=[k for k, _ in order],
    )


def _score_signals(
    cands: Candidates,
    order: list[tuple[str, object]],
    keys: Mapping[tuple[str, object], str],
    phrase_vectors: Mapping[str, np.ndarray],
    voted: Mapping[int, VotedPaper],
    weights: scoring.Weights,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fused and plain-cosine rows of the signals `order`, and their query vectors (each row
    depends on its own signal only, which is what lets `Candidates.rows` cache them)."""
    dim = cands.vectors.shape[1]
    queries = np.zeros((len(order), dim), dtype=np.float32)
    texts: list[str] = []
    for r, (kind, ref) in enumerate(order):
        if kind in ("liked", "disliked"):
            paper = voted[ref]  # type: ignore[index]
            queries[r] = paper.vector
            texts.append(paper_text(paper.title, paper.abstract))
        else:
            queries[r] = phrase_vectors[ref]  # type: ignore[index]
            texts.append(keys[(kind, ref)])
    lex = lexical.scores(cands.index, texts)
    dense = queries @ cands.vectors.T
    interest = np.array([k == "interest" for k, _ in order], dtype=bool)
    fused = scoring.signal_scores(queries, cands.vectors, lex, refine_rows=interest, weights=weights)
    # Exclusions judge the paper itself: only positive signals borrow from neighbours.
    positive = np.flatnonzero([k != "exclude" for k, _ in order])
    fused[positive] = scoring.smooth(fused[positive], cands.neighbours, weights)
    liked = np.array([k == "liked" for k, _ in order], dtype=bool)
    fused[liked] *= np.float32(weights.liked)
    return fused, dense.astype(np.float32, copy=False), queries


def _padded(lists: list[list[int]]) -> np.ndarray:
    width = max((len(x) for x in lists), default=0)
    out = np.full((len(lists), width), -1, dtype=np.int64)
    for i, items in enumerate(lists):
        out[i, : len(items)] = items
    return out


def profile_index(signals: Signals, profiles: Sequence[Profile]) -> scoring.ProfileIndex:
    """Padded row indices of each profile's positive, exclusion and disliked signals."""
    positive: list[list[int]] = []
    exclude: list[list[int]] = []
    disliked: list[list[int]] = []
    for p in profiles:
        mine = [signals.row[("interest", phrase_key(x))] for x in p.phrases]
        mine += [signals.row[("liked", pid)] for pid in p.liked if ("liked", pid) in signals.row]
        positive.append(mine)
        exclude.append([signals.row[("exclude", phrase_key(x))] for x in p.excludes])
        disliked.append(
            [signals.row[("disliked", pid)] for pid in p.disliked if ("disliked", pid) in signals.row]
        )
    rows = _padded(positive)
    return scoring.ProfileIndex(
        rows, _padded(exclude), _padded(disliked), scoring.mean_norms(signals.vectors, rows)
    )


class Choice(NamedTuple):
    """One chosen paper for one profile, before explanation (a tuple: a 100k-reader run
    makes a million of them)."""

    column: int
    score: float
    reason: str  # "interest" | "author" | "liked"
    signal: int | None  # row in Signals that matched (None for author picks)


def score_chunk(
    cands: Candidates, signals: Signals, profiles: Sequence[Profile]
) -> tuple[np.ndarray, np.ndarray, scoring.ProfileIndex]:
    """S × N relevance, which positive signal won, and the index used (for explanations)."""
    index = profile_index(signals, profiles)
    scores, which = scoring.profile_scores(signals.fused, signals.dense, index, cands.prior, scoring.WEIGHTS)
    return scores, which, index


def rank(
    cands: Candidates,
    profiles: Sequence[Profile],
    signals: Signals,
    *,
    caps: Sequence[int],
    min_score: float,
    first_column: Sequence[int] | None = None,
    blocked: Sequence[Sequence[int]] | None = None,
) -> list[list[Choice]]:
    """Each profile's chosen papers, best first (followed authors before everything)."""
    out: list[list[Choice]] = []
    n = len(cands.ids)
    for start in range(0, len(profiles), CHUNK):
        chunk = list(profiles[start : start + CHUNK])
        scores, which, index = score_chunk(cands, signals, chunk)
        if first_column is not None:
            first = np.asarray(first_column[start : start + CHUNK])[:, None]
            scores[np.arange(n)[None, :] < first] = scoring.NEG
        author_hits: dict[int, set[int]] = {}
        for i, profile in enumerate(chunk):
            if blocked is not None and blocked[start + i]:
                scores[i, list(blocked[start + i])] = scoring.NEG
            if profile.authors:
                cols = {c for a in profile.authors for c in cands.authors.papers_by(a)}
                cols = {
                    c
                    for c in cols
                    if np.isfinite(scores[i, c]) or _only_excluded(first_column, blocked, start + i, c)
                }
                for c in cols:
                    base = scores[i, c] if np.isfinite(scores[i, c]) else 0.0
                    scores[i, c] = AUTHOR_BOOST + max(float(base), 0.0)
                author_hits[i] = cols
        caps_arr = np.asarray(caps[start : start + CHUNK], dtype=np.int64)
        picked, values = select.mmr(scores, cands.vectors, caps_arr, min_score, gram=cands.gram)
        # The winning signal row of every pick, gathered at once; then plain Python lists,
        # because a million numpy-scalar conversions would cost more than the scoring.
        safe = np.maximum(picked, 0)
        won = np.take_along_axis(which, safe, axis=1)
        matched = (
            np.take_along_axis(index.positive, won, axis=1)
            if index.positive.shape[1]
            else np.full_like(picked, -1)
        )
        kinds = signals.kind
        for i, (cols, vals, rows) in enumerate(zip(picked.tolist(), values.tolist(), matched.tolist())):
            choices = []
            mine = author_hits.get(i, ())
            for col, value, row in zip(cols, vals, rows):
                if col < 0:
                    break
                if col in mine:
                    choices.append(Choice(col, value - AUTHOR_BOOST, "author", None))
                else:
                    reason = "liked" if kinds[row] == "liked" else "interest"
                    choices.append(Choice(col, value, reason, row))
            out.append(choices)
    return out


def _only_excluded(
    first_column: Sequence[int] | None, blocked: Sequence[Sequence[int]] | None, i: int, col: int
) -> bool:
    """A followed author's paper is picked unless it is old or already sent (not for -topics)."""
    if first_column is not None and col < first_column[i]:
        return False
    return not (blocked is not None and col in set(blocked[i]))


class HybridRanker(Ranker):
    """Per-signal dense + lexical fusion with feedback and smoothing, max over a profile's
    signals blended with the whole profile, then threshold, cap and MMR."""

    name = "hybrid"

    def rank(
        self,
        cands: Candidates,
        profiles: Sequence[Profile],
        queries: Queries,
        *,
        caps: Sequence[int],
        min_score: float,
        first_column: Sequence[int] | None = None,
        blocked: Sequence[Sequence[int]] | None = None,
    ) -> tuple[Signals, list[list[Choice]]]:
        signals = build_signals(cands, profiles, queries.phrases, queries.voted)
        choices = rank(
            cands,
            profiles,
            signals,
            caps=caps,
            min_score=min_score,
            first_column=first_column,
            blocked=blocked,
        )
        return signals, choices
