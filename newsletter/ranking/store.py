"""Loading and storing vectors: each paper and each phrase is embedded once per model.

Every load re-checks a vector (length, checksum, finite, unit norm, same size as the rest);
a vector that fails is embedded again and replaced, never silently used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter.db import chunked
from newsletter.papers.models import Paper
from newsletter.ranking import embedder
from newsletter.ranking.models import PaperEmbedding, PhraseEmbedding
from newsletter.settings import Settings


def checksum(blob: bytes) -> str:
    """A short fingerprint of the stored bytes (detects truncation and bit rot)."""
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


def encode_row(vector: np.ndarray) -> dict[str, object]:
    """The columns that store `vector`."""
    blob = np.asarray(vector, dtype="<f4").tobytes()
    return {"dim": int(vector.shape[0]), "vector": blob, "checksum": checksum(blob)}


def decode(dim: int, blob: bytes | None, digest: str, expected_dim: int | None) -> np.ndarray | None:
    """The stored vector, or None when it cannot be trusted (and must be embedded again)."""
    if blob is None or dim <= 0 or len(blob) != 4 * dim:
        return None
    if expected_dim is not None and dim != expected_dim:
        return None
    if checksum(bytes(blob)) != digest:
        return None
    vector = np.frombuffer(bytes(blob), dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(vector)) or abs(float(np.linalg.norm(vector)) - 1.0) > 1e-3:
        return None
    return vector


def paper_text(title: str, abstract: str) -> str:
    """What is embedded for a paper: its cleaned title, then its abstract."""
    title = " ".join((title or "").split())
    abstract = " ".join((abstract or "").split())
    if not abstract:
        return title
    joiner = " " if title.endswith((".", "?", "!", ":")) else ". "
    return f"{title}{joiner}{abstract}"


def _store_papers(session: Session, model: str, ids: list[int], vectors: np.ndarray) -> None:
    session.execute(
        delete(PaperEmbedding).where(
            col(PaperEmbedding.model) == model, col(PaperEmbedding.paper_id).in_(ids)
        )
    )
    rows = [{"paper_id": pid, "model": model, **encode_row(v)} for pid, v in zip(ids, vectors)]
    if rows:
        session.execute(insert(PaperEmbedding), rows)


def _embed_papers(
    session: Session,
    settings: Settings,
    ids: list[int],
    progress: Callable[[int], None] | None = None,
) -> dict[int, np.ndarray]:
    """Embed and store the papers `ids` (longest texts first, like encode's own sorting)."""
    model = embedder.model_identity(settings)
    texts: dict[int, str] = {}
    for chunk in chunked(ids):
        for pid, title, abstract in session.exec(
            select(Paper.id, Paper.title, Paper.abstract).where(col(Paper.id).in_(chunk))
        ):
            texts[pid or 0] = paper_text(title, abstract)
    order = sorted(texts, key=lambda pid: -len(texts[pid]))
    out: dict[int, np.ndarray] = {}
    # One model batch per encode call: the progress bar moves every batch (a day's few hundred
    # papers used to sit at 0 % and jump to 100 %) and a crash loses little work.
    for chunk in chunked(order, settings.embedding_batch_size):
        vectors = embedder.encode(settings, [texts[pid] for pid in chunk])
        _store_papers(session, model, chunk, vectors)
        out.update(zip(chunk, vectors))
        if progress is not None:
            progress(len(chunk))
    session.flush()
    return out


def missing_paper_ids(session: Session, settings: Settings) -> list[int]:
    """Papers with no stored vector under the configured model."""
    model = embedder.model_identity(settings)
    stored = select(PaperEmbedding.paper_id).where(PaperEmbedding.model == model)
    query = select(Paper.id).where(col(Paper.id).not_in(stored)).order_by(col(Paper.id))
    return [pid for pid in session.exec(query) if pid is not None]


def embed_missing(session: Session, settings: Settings, progress: Callable[[int], None] | None = None) -> int:
    """Embed every paper that lacks a vector under the current model; returns how many."""
    ids = missing_paper_ids(session, settings)
    if ids:
        _embed_papers(session, settings, ids, progress)
    return len(ids)


def paper_vectors(
    session: Session, settings: Settings, paper_ids: Sequence[int], dim: int | None = None
) -> np.ndarray:
    """Vectors of `paper_ids` in that order; missing or untrustworthy ones are embedded now.

    `dim` is the size every vector must have (the phrase vectors' size); None asks the model.
    """
    model = embedder.model_identity(settings)
    found: dict[int, np.ndarray] = {}
    for chunk in chunked(list(paper_ids)):
        rows = session.exec(
            select(
                PaperEmbedding.paper_id,
                PaperEmbedding.dim,
                PaperEmbedding.vector,
                PaperEmbedding.checksum,
            ).where(PaperEmbedding.model == model, col(PaperEmbedding.paper_id).in_(chunk))
        )
        for pid, size, blob, digest in rows:
            if dim is None:
                dim = embedder.dimension(settings)
            vector = decode(size, blob, digest, dim)
            if vector is not None:
                found[pid] = vector
    redo = [pid for pid in paper_ids if pid not in found]
    if redo:
        found.update(_embed_papers(session, settings, redo))
    if not paper_ids:
        return np.zeros((0, dim or 0), dtype=np.float32)
    return np.stack([found[pid] for pid in paper_ids]).astype(np.float32, copy=False)


@lru_cache(maxsize=65_536)
def phrase_key(phrase: str) -> str:
    """Phrases differing only in case or spacing share one cached vector (memoised: a
    100k-reader run asks for the keys of the same few thousand phrases a million times)."""
    return " ".join(phrase.split()).casefold()


def phrase_vectors(session: Session, settings: Settings, phrases: Sequence[str]) -> np.ndarray:
    """Vectors of `phrases` in order, from the shared cache; new phrases are embedded once."""
    model = embedder.model_identity(settings)
    keys = [phrase_key(p) for p in phrases]
    unique = list(dict.fromkeys(keys))
    found: dict[str, np.ndarray] = {}
    dims: set[int] = set()
    for chunk in chunked(unique):
        rows = session.exec(
            select(
                PhraseEmbedding.phrase,
                PhraseEmbedding.dim,
                PhraseEmbedding.vector,
                PhraseEmbedding.checksum,
            ).where(PhraseEmbedding.model == model, col(PhraseEmbedding.phrase).in_(chunk))
        )
        for key, size, blob, digest in rows:
            vector = decode(size, blob, digest, None)
            if vector is not None:
                found[key] = vector
                dims.add(size)
    if len(dims) > 1:  # a model changed size under the same name: trust only the model
        size = embedder.dimension(settings)
        found = {k: v for k, v in found.items() if v.shape[0] == size}
    missing = [k for k in unique if k not in found]
    if missing:
        vectors = embedder.encode(settings, missing)
        _store_phrases(session, model, missing, vectors)
        found.update(zip(missing, vectors))
    if not keys:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


def _store_phrases(session: Session, model: str, keys: list[str], vectors: np.ndarray) -> None:
    """Insert phrase vectors; a phrase another process stored meanwhile is simply kept."""
    rows = [{"phrase": k, "model": model, **encode_row(v)} for k, v in zip(keys, vectors)]
    for chunk in chunked(rows):
        try:
            with session.begin_nested():
                session.execute(
                    delete(PhraseEmbedding).where(
                        col(PhraseEmbedding.model) == model,
                        col(PhraseEmbedding.phrase).in_([r["phrase"] for r in chunk]),
                    )
                )
                session.execute(insert(PhraseEmbedding), chunk)
        except IntegrityError:  # a concurrent writer won the race; its vector is as good
            continue
