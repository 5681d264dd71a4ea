"""Realistic paper records for digest and delivery tests (no network, no importer needed)."""

from __future__ import annotations

from datetime import UTC, datetime

from newsletter.papers.models import Paper
from subscribers.models import Subscriber

TOPICS = [
    (
        "Hyper-Connections: widening residual streams",
        "residual connections transformer depth training stability",
    ),
    (
        "Graph neural networks for molecule property prediction",
        "graph neural networks message passing molecules chemistry",
    ),
    (
        "Retrieval-augmented generation with long-context language models",
        "retrieval augmented generation language models long context",
    ),
    (
        "Diffusion models for high-resolution image synthesis",
        "diffusion models image generation denoising score matching",
    ),
    (
        "Reinforcement learning from human feedback at scale",
        "reinforcement learning human feedback reward model alignment",
    ),
    (
        "Protein structure prediction with equivariant networks",
        "protein folding structure prediction equivariant networks biology",
    ),
    (
        "Speech recognition for low-resource languages",
        "speech recognition low resource languages self-supervised audio",
    ),
    (
        "Sparse mixture-of-experts language models",
        "mixture of experts sparse routing language models efficiency",
    ),
]


def make_paper(
    index: int, *, title: str | None = None, upvotes: int | None = None, **fields: object
) -> Paper:
    """Paper number `index` (cycling through TOPICS); fields override anything."""
    topic_title, words = TOPICS[index % len(TOPICS)]
    base = title or f"{topic_title} ({index})"
    values: dict[str, object] = {
        "source": "arxiv",
        "source_id": f"2611.{index:05d}",
        "arxiv_id": f"2611.{index:05d}",
        "title": base,
        "title_key": base.lower(),
        "abstract": (
            f"We study {words}. Our method improves on strong baselines across several benchmarks, "
            f"and we analyse why: {words} interact in ways prior work missed. " * 3
        ),
        "authors": [f"Author {index}-{k}" for k in range(5)],
        "categories": ["cs.LG", "cs.CL"],
        "url": f"https://arxiv.org/abs/2611.{index:05d}",
        "pdf_url": f"https://arxiv.org/pdf/2611.{index:05d}",
        "upvotes": upvotes,
        "first_seen_at": datetime.now(UTC),
    }
    values.update(fields)
    return Paper(**values)  # type: ignore[arg-type]


def make_reader(subscriber_id: int, email: str, interests: list[str], **fields: object) -> Subscriber:
    """An active subscriber held in memory (for rendering; nothing is stored)."""
    return Subscriber(
        id=subscriber_id, email=email, email_key=email, interests=interests, status="active", **fields
    )
