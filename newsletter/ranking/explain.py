"""Why a paper was picked: the interest it matched, the words it shares, and a highlight.

The highlight is the abstract sentence closest to the matched interest: the sentence sharing
most of the interest's words; when no sentence shares any (plain-words interests, liked
papers) and sentence vectors are given, the sentence whose vector is closest to the
interest's; otherwise the first sentence (abstracts lead with their claim).
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from newsletter.ranking import lexical

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
#: Sentences shorter than this are fragments ("Code is available.") — never a highlight.
MIN_SENTENCE_CHARS = 40
#: The longest highlight shown; longer sentences are cut at a word boundary.
MAX_HIGHLIGHT_CHARS = 300


@lru_cache(maxsize=16_384)
def sentences(abstract: str) -> tuple[str, ...]:
    """The abstract split into sentences worth showing (fragments dropped)."""
    parts = [s.strip() for s in _SENTENCE_END.split(" ".join((abstract or "").split()))]
    useful = [s for s in parts if len(s) >= MIN_SENTENCE_CHARS]
    return tuple(useful or [p for p in parts if p])


def shorten(sentence: str) -> str:
    """A sentence cut to MAX_HIGHLIGHT_CHARS at a word boundary."""
    if len(sentence) <= MAX_HIGHLIGHT_CHARS:
        return sentence
    return sentence[:MAX_HIGHLIGHT_CHARS].rsplit(" ", 1)[0] + "…"


def highlight(
    interest: str,
    interest_vector: np.ndarray | None,
    abstract: str,
    sentence_vectors: np.ndarray | None = None,
) -> str | None:
    """The abstract sentence closest to `interest` (None for an empty abstract)."""
    parts = sentences(abstract)
    if not parts:
        return None
    words = set(lexical.tokens(interest))
    overlap = np.array(
        [len(words & lexical.token_set(s)) / max(len(words), 1) for s in parts], dtype=np.float32
    )
    score = 0.5 * overlap
    if interest_vector is not None and sentence_vectors is not None and len(sentence_vectors):
        score = score + sentence_vectors @ interest_vector
    # Ties (no vectors, no shared word) keep the first sentence: abstracts lead with the claim.
    return shorten(parts[int(np.argmax(score))])


def shares_words(interest: str, abstract: str) -> bool:
    """Whether some abstract sentence has a word of the interest (words alone can choose)."""
    words = set(lexical.tokens(interest))
    return any(words & lexical.token_set(s) for s in sentences(abstract))


def matched_terms(interest: str, title: str, abstract: str) -> tuple[str, ...]:
    """Words of the interest that occur in the paper's title or abstract."""
    return lexical.matched_terms(interest, f"{title} {abstract}")
