"""BM25-style term matching, so exact terms and acronyms ("LoRA", "5G", "PINN") count.

Dense vectors blur rare tokens: MiniLM sees "PINN" as a few word pieces close to many things.
A lexical score over title and abstract restores them. Scores are normalised per phrase to
0–1: the share of the phrase's idf weight that a paper matches (each term saturating like
BM25's tf term), so a one-word phrase and a five-word phrase are on the same scale.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

#: BM25 term-frequency saturation and length normalisation (the usual Robertson values).
K1 = 1.2
B = 0.75

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_LATEX = re.compile(r"\$[^$]*\$|\\[a-zA-Z]+")
_STOP = frozenset(ENGLISH_STOP_WORDS) | {"using", "based", "via", "new", "paper", "propose"}


def stem(token: str) -> str:
    """A light plural/suffix folding: "networks"→"network", "PINNs"→"pinn", "models"→"model"."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def tokens(text: str) -> list[str]:
    """Lower-cased, stemmed word tokens without stop words; digits count ("5g", "3d")."""
    text = _LATEX.sub(" ", text or "")
    out = []
    for raw in _TOKEN.findall(text.lower()):
        if raw in _STOP or (len(raw) < 2 and not raw.isdigit()):
            continue
        out.append(stem(raw))
    return out


@dataclass(frozen=True)
class Index:
    """A BM25 index of the candidate papers: weighted doc-term matrix and idf per term."""

    vectorizer: CountVectorizer
    weights: sparse.csr_matrix  # papers × terms, BM25 tf part × idf
    idf: np.ndarray
    n_docs: int

    def terms(self) -> dict[str, int]:
        return self.vectorizer.vocabulary_


def _idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    return np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)


def build_index(texts: Sequence[str]) -> Index:
    """Index `texts` (title + abstract of each candidate paper)."""
    vectorizer = CountVectorizer(analyzer=tokens, dtype=np.float32)
    try:
        counts = vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # no text has a single token: an empty vocabulary
        vectorizer = CountVectorizer(analyzer=lambda _t: ["\x00"], dtype=np.float32)
        counts = vectorizer.fit_transform(texts or [""]).tocsr()
    n_docs = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float32)
    idf = _idf(df, n_docs)
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    avg = float(lengths.mean()) if n_docs and lengths.mean() > 0 else 1.0
    norm = K1 * (1 - B + B * lengths / avg)
    weights = counts.copy()
    row_of = np.repeat(np.arange(n_docs), np.diff(counts.indptr))
    tf = counts.data
    # BM25's tf part, capped at 1: one use in an average-length paper earns the term's full
    # idf, so "matched every word of the phrase" means a lexical score of 1.
    weights.data = np.minimum(tf * (K1 + 1) / (tf + norm[row_of]), 1.0) * idf[counts.indices]
    return Index(vectorizer, weights.tocsr(), idf, n_docs)


def query_matrix(index: Index, queries: Sequence[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Queries as term-indicator rows, and each query's total idf weight (the 0–1 scale).

    Query terms absent from every candidate still count in the total, weighted as the rarest
    term: a phrase about "PINN" does not match a day with no PINN paper just by its other words.
    """
    vocab = index.terms()
    unseen_idf = float(_idf(np.zeros(1, np.float32), index.n_docs)[0])
    rows, cols, totals = [], [], np.zeros(len(queries), dtype=np.float32)
    for q, text in enumerate(queries):
        for term in dict.fromkeys(tokens(text)):
            column = vocab.get(term)
            if column is None:
                totals[q] += unseen_idf
            else:
                rows.append(q)
                cols.append(column)
                totals[q] += index.idf[column]
    data = np.ones(len(rows), dtype=np.float32)
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(len(queries), len(vocab)))
    return matrix, totals


def scores(index: Index, queries: Sequence[str]) -> np.ndarray:
    """queries × papers lexical scores in 0–1 (dense float32)."""
    if not queries:
        return np.zeros((0, index.n_docs), dtype=np.float32)
    matrix, totals = query_matrix(index, queries)
    raw = (matrix @ index.weights.T).toarray().astype(np.float32)
    return raw / np.maximum(totals, 1e-6)[:, None]


@lru_cache(maxsize=16_384)
def token_set(text: str) -> frozenset[str]:
    """The distinct tokens of `text` (cached: one paper is explained for many readers)."""
    return frozenset(tokens(text))


def matched_terms(query: str, text: str) -> tuple[str, ...]:
    """The words of `query` that also occur in `text`, as the reader typed them."""
    present = token_set(text)
    seen: dict[str, str] = {}
    for raw in _TOKEN.findall(query):
        for term in tokens(raw):
            if term in present and term not in seen:
                seen[term] = raw
    return tuple(seen.values())
