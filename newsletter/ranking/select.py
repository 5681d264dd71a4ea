"""Choosing each profile's papers: threshold, cap, and MMR diversity — vectorised per chunk.

Maximal Marginal Relevance picks, one slot at a time, the paper maximising
`LAMBDA × relevance − (1 − LAMBDA) × (its highest cosine to a paper already picked)`, so five
near-identical papers cannot fill one email. All profiles of a chunk advance together.
"""

from __future__ import annotations

import numpy as np

#: Relevance vs novelty. 0.8 keeps the order of clearly different papers (their cosines are
#: ~0.2–0.4, a penalty of ≤0.08) but pushes a near-duplicate (cosine ~0.9) down by ~0.18.
LAMBDA = 0.8
#: Each profile's MMR pool: its best POOL_FACTOR × cap candidates (at least MIN_POOL).
POOL_FACTOR = 4
MIN_POOL = 20


def mmr(
    scores: np.ndarray,
    vectors: np.ndarray,
    caps: np.ndarray,
    min_score: float,
    lam: float = LAMBDA,
    gram: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Columns picked per profile (S × max cap, −1 = empty slot) and their scores.

    scores: S × N (−inf for papers that may not be picked); vectors: N × D unit rows.
    gram: optional N × N cosines of the candidates (`vectors @ vectors.T`), computed once per
    pool by the caller: redundancy is then a gather, not a batched mat-vec per slot.
    Only papers scoring at least `min_score` are picked; fewer than the cap (or none) is fine.
    """
    s_count, n = scores.shape
    width = int(caps.max()) if s_count else 0
    picked = np.full((s_count, width), -1, dtype=np.int64)
    values = np.full((s_count, width), np.nan, dtype=np.float32)
    if s_count == 0 or n == 0 or width == 0:
        return picked, values
    pool = min(n, max(MIN_POOL, POOL_FACTOR * width))
    top = (
        np.argpartition(-scores, pool - 1, axis=1)[:, :pool]
        if pool < n
        else np.tile(np.arange(n), (s_count, 1))
    )
    rel = np.take_along_axis(scores, top, axis=1)
    available = np.isfinite(rel) & (rel >= min_score)
    pooled = vectors[top] if gram is None else None  # S × M × D
    redundancy = np.zeros_like(rel)
    rows = np.arange(s_count)
    for slot in range(width):
        gain = np.where(available, lam * rel - (1 - lam) * redundancy, -np.inf)
        best = gain.argmax(axis=1)
        ok = available[rows, best] & (slot < caps)
        picked[ok, slot] = top[rows[ok], best[ok]]
        values[ok, slot] = rel[rows[ok], best[ok]]
        available[rows[ok], best[ok]] = False
        # Cosines of each pool member to the paper just picked (S × M).
        if pooled is None:
            assert gram is not None
            sim = gram[top, top[rows, best][:, None]]
        else:
            sim = np.matmul(pooled, pooled[rows, best][:, :, None])[:, :, 0]
        redundancy = np.where(ok[:, None], np.maximum(redundancy, sim), redundancy)
        if not ok.any():
            break
    return picked, values
