"""Scores of candidate papers for many profiles at once: pure numpy, no database, no model.

Each *signal* (an interest phrase, an exclusion, a liked or disliked paper) is scored against
every candidate once, as a row of a signals × papers matrix; a subscriber's score for a paper
is then the best of their own rows (gathered by index, so "diffusion models, wireless
networks" stays two sharp interests instead of one blurry one), blended with the profile's
score as a whole (`Weights.blend`).

Every weight below is a documented constant in `Weights`; the relevance benchmark
(`benchmarks/relevance.py`) is what they were chosen on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

NEG = np.float32(-np.inf)
#: Phrase scores below this are "not about it" and add no breadth bonus (see Weights.breadth).
BREADTH_FLOOR = 0.2


@dataclass(frozen=True)
class Weights:
    """Every knob of the score, with the reason for its value."""

    #: Share of the lexical (BM25, 0–1) score added to the cosine similarity. Cosines of
    #: MiniLM live in about −0.1…0.7; 0.25 lets an exact rare term ("PINN", "LoRA") lift a
    #: paper by up to a quarter of that range without letting common words dominate.
    lexical: float = 0.25
    #: Pseudo-relevance feedback: each phrase vector moves this far toward the mean vector of
    #: its best-scoring candidates. A short phrase ("Superconductivity") is a weak query; the
    #: papers it clearly matches say what the field talks about today.
    feedback: float = 0.6
    #: How many of a phrase's best candidates feed that mean.
    feedback_top: int = 8
    #: Neighbour smoothing: a paper's score blends with the mean score of its `neighbours`
    #: most similar candidates, `smoothing_rounds` times. Papers of one topic form tight
    #: clusters; a paper whose neighbours all match an interest is on topic even if its own
    #: wording is unusual (+0.03–0.06 nDCG on arxiv-2007, see benchmarks/relevance.py).
    smoothing: float = 0.5
    neighbours: int = 10
    smoothing_rounds: int = 2
    #: Breadth bonus: this times the mean, over the profile's phrases, of how far each phrase's
    #: score exceeds BREADTH_FLOOR. A paper matching several of one's phrases ranks a little
    #: higher; one strong match among unrelated interests loses nothing from this bonus.
    breadth: float = 0.3
    #: Whole-profile blend: a profile of several phrases scores (1 − this) × its best
    #: phrase + this × its score against the normalised mean of its phrase vectors (the
    #: cosine of a paper with that mean is the mean of the phrase cosines over the mean's
    #: norm, so it costs one more gather, no model call). Several keywords together say
    #: more than each alone ("QCD" among "collider phenomenology, neutrino masses" means
    #: particle physics); the max keeps each interest sharp. Single-phrase profiles are
    #: unchanged. Chosen on arxiv-2007 keyword profiles (benchmarks/relevance.py).
    blend: float = 0.7
    #: Liked papers are whole abstracts: paper–paper cosines run higher than phrase–paper
    #: ones, so they are scaled down to compete fairly with typed interests.
    liked: float = 0.85
    #: Disliked papers subtract this times their cosine above `disliked_floor`.
    disliked: float = 0.8
    disliked_floor: float = 0.45
    #: A "-phrase" drops a paper whose fused score against it reaches this (a strong match).
    exclusion: float = 0.45
    #: Popularity prior: up to this much for Hugging Face upvotes (log-scaled, full at 100).
    popularity: float = 0.03
    #: Recency prior: up to this much for a paper published today, halving every 7 days.
    recency: float = 0.02
    recency_half_life_days: float = 7.0


WEIGHTS = Weights()


def fuse(dense: np.ndarray, lexical: np.ndarray, weights: Weights = WEIGHTS) -> np.ndarray:
    """Dense cosine plus a share of the 0–1 lexical score (same shape, float32)."""
    return (dense + np.float32(weights.lexical) * lexical).astype(np.float32, copy=False)


def refine(
    queries: np.ndarray, papers: np.ndarray, fused: np.ndarray, weights: Weights = WEIGHTS
) -> np.ndarray:
    """Query vectors moved toward their top candidates (Rocchio feedback), re-normalised."""
    if weights.feedback <= 0 or papers.shape[0] == 0 or queries.shape[0] == 0:
        return queries
    k = min(weights.feedback_top, papers.shape[0])
    top = np.argpartition(-fused, k - 1, axis=1)[:, :k]
    centroid = papers[top].mean(axis=1)
    moved = queries + np.float32(weights.feedback) * centroid
    norms = np.linalg.norm(moved, axis=1, keepdims=True)
    return (moved / np.maximum(norms, 1e-12)).astype(np.float32)


def neighbour_matrix(papers: np.ndarray, k: int) -> sparse.csr_matrix:
    """N × N row-stochastic matrix: each paper's k most similar other candidates, 1/k each."""
    n = papers.shape[0]
    k = min(k, n - 1)
    if k <= 0:
        return sparse.identity(n, dtype=np.float32, format="csr")
    sim = papers @ papers.T
    np.fill_diagonal(sim, -np.inf)
    cols = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(n), k)
    data = np.full(n * k, 1.0 / k, dtype=np.float32)
    return sparse.csr_matrix((data, (rows, cols.ravel())), shape=(n, n))


def smooth(fused: np.ndarray, neighbours: sparse.csr_matrix, weights: Weights = WEIGHTS) -> np.ndarray:
    """Blend each score with its neighbours' mean score (see `Weights.smoothing`)."""
    if weights.smoothing <= 0 or fused.size == 0:
        return fused
    alpha = np.float32(weights.smoothing)
    out = fused
    for _ in range(weights.smoothing_rounds):
        spread = np.asarray((neighbours @ out.T).T, dtype=np.float32)
        out = (1 - alpha) * fused + alpha * spread
    return out.astype(np.float32, copy=False)


def signal_scores(
    queries: np.ndarray,
    papers: np.ndarray,
    lexical: np.ndarray,
    *,
    refine_rows: np.ndarray | None = None,
    weights: Weights = WEIGHTS,
) -> np.ndarray:
    """signals × papers fused scores; rows flagged in `refine_rows` get feedback first."""
    fused = fuse(queries @ papers.T, lexical, weights)
    if refine_rows is not None and refine_rows.any() and weights.feedback > 0:
        rows = np.flatnonzero(refine_rows)
        moved = refine(queries[rows], papers, fused[rows], weights)
        fused[rows] = fuse(moved @ papers.T, lexical[rows], weights)
    return fused


def prior(upvotes: np.ndarray, age_days: np.ndarray, weights: Weights = WEIGHTS) -> np.ndarray:
    """A small per-paper bonus for popularity and freshness (0 for unknown values)."""
    popular = np.minimum(np.log1p(np.maximum(upvotes, 0)) / np.log1p(100.0), 1.0)
    fresh = np.power(0.5, np.maximum(age_days, 0) / weights.recency_half_life_days)
    fresh = np.where(np.isfinite(age_days), fresh, 0.0)
    return (weights.popularity * popular + weights.recency * fresh).astype(np.float32)


def mean_norms(vectors: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per profile, the norm of the mean of its signals' vectors (1 where it has none)."""
    if index.shape[1] == 0:
        return np.ones(index.shape[0], dtype=np.float32)
    valid = index >= 0
    stacked = vectors[np.maximum(index, 0)] * valid[:, :, None]
    count = np.maximum(valid.sum(axis=1), 1)
    norms = np.linalg.norm(stacked.sum(axis=1), axis=1) / count
    return np.where(valid.any(axis=1), np.maximum(norms, 1e-6), 1.0).astype(np.float32)


def gather_max(
    rows: np.ndarray,
    index: np.ndarray,
    breadth: float = 0.0,
    blend: float = 0.0,
    norms: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each profile (row of `index`, −1 = padding) the best of its rows, and which one.

    rows: R × N; index: S × K → best: S × N, which: S × N (position in `index`, 0…K−1).
    With `breadth` > 0 the mean of the profile's rows above BREADTH_FLOOR is added, times
    `breadth`. With `blend` > 0 (and `norms`, see `mean_norms`) a profile of several rows
    scores (1 − blend) × its best + blend × the mean of its rows / norm (Weights.blend).
    One index column at a time (K ≤ a handful): each step gathers S × N rows and folds them
    into a running max in place, which is several times faster than stacking S × K × N and
    taking an argmax across the (strided) middle axis — the hot loop of a 100k-reader run.
    """
    s_count, n = index.shape[0], rows.shape[1]
    best = np.full((s_count, n), NEG, dtype=np.float32)
    which = np.zeros((s_count, n), dtype=np.int32)
    if index.shape[1] == 0:
        return best, which
    rows = rows.astype(np.float32, copy=False)
    safe = np.maximum(index, 0)  # padding reads row 0, then is overwritten with −inf
    support = None
    if breadth > 0 and index.shape[1] > 1:
        support = np.zeros((s_count, n), dtype=np.float32)
    total = None
    if blend > 0 and norms is not None and index.shape[1] > 1:
        total = np.zeros((s_count, n), dtype=np.float32)
    got = np.empty((s_count, n), dtype=np.float32)
    better = np.empty((s_count, n), dtype=bool)
    floor = np.float32(BREADTH_FLOOR)
    for k in range(index.shape[1]):
        np.take(rows, safe[:, k], axis=0, out=got)
        if total is not None:
            np.add(total, got, out=total, where=(index[:, k] >= 0)[:, None])
        got[index[:, k] < 0] = NEG
        np.greater(got, best, out=better)
        np.maximum(best, got, out=best)
        np.copyto(which, np.int32(k), where=better)
        if support is not None:
            # How far this row exceeds the floor (padding, −inf, adds 0); `got` is spent.
            np.subtract(got, floor, out=got)
            np.maximum(got, 0, out=got)
            support += got
    valid = (index >= 0).sum(axis=1).astype(np.float32)
    if total is not None:
        several = valid > 1
        keep = np.where(several, 1 - blend, 1).astype(np.float32)
        share = np.where(several, blend / (np.maximum(valid, 1) * norms), 0).astype(np.float32)
        best *= keep[:, None]
        total *= share[:, None]
        best += total
    if support is not None:
        support *= np.float32(breadth) / np.maximum(valid, 1)[:, None]
        best += support
    return best, which


@dataclass(frozen=True)
class ProfileIndex:
    """A chunk of profiles as padded index matrices into the signal rows (−1 = none)."""

    positive: np.ndarray  # S × K: interest phrases and liked papers
    exclude: np.ndarray  # S × E: "-phrase" rows
    disliked: np.ndarray  # S × D: disliked-paper rows (dense cosines)
    #: S: norm of the mean of each profile's positive vectors (`mean_norms`); None = no blend
    norms: np.ndarray | None = None


def profile_scores(
    signals: np.ndarray,
    dense: np.ndarray,
    profiles: ProfileIndex,
    paper_prior: np.ndarray,
    weights: Weights = WEIGHTS,
) -> tuple[np.ndarray, np.ndarray]:
    """S × N scores (−inf = excluded) and which positive signal gave each score.

    `signals` holds fused rows (phrases, liked papers already scaled); `dense` holds the
    plain cosines used for disliked papers.
    """
    best, which = gather_max(signals, profiles.positive, weights.breadth, weights.blend, profiles.norms)
    if profiles.disliked.shape[1]:
        worst, _ = gather_max(dense, profiles.disliked)
        best = best - np.float32(weights.disliked) * np.maximum(worst - np.float32(weights.disliked_floor), 0)
    if profiles.exclude.shape[1]:
        hit, _ = gather_max(signals, profiles.exclude)
        best = np.where(hit >= weights.exclusion, NEG, best)
    return (best + paper_prior[None, :]).astype(np.float32, copy=False), which
