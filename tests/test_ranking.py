"""Ranking with the real model on real databases: who gets which papers, and why.

The labelled profiles below are ours, over the 116 papers of ../shared/data/papers-page.txt:
keyword-style profiles and plain-words profiles, each with the papers that must come first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from jobs.compose import recommend
from newsletter.delivery.models import Delivery, DeliveryItem, DeliveryStatus
from newsletter.errors import UserError
from newsletter.papers.importers import import_file
from newsletter.papers.models import Paper
from newsletter.ranking import embedder, service, store
from newsletter.ranking.models import PaperEmbedding, PhraseEmbedding
from newsletter.settings import Settings
from subscribers import service as subscribers
from subscribers.feedback import record_vote
from tests.support.requirements import shared

pytestmark = pytest.mark.slow


_VECTORS: dict[str, np.ndarray] = {}


@pytest.fixture
def papers(session: Session, settings: Settings) -> dict[str, int]:
    """The papers page imported and embedded; title → paper id.

    The first test embeds through `embed_missing`; later ones store the same vectors (the
    model is loaded once per run, and embedding 116 abstracts per test would dominate).
    """
    import_file(session, shared("data/papers-page.txt"), "papers-page")
    rows = list(session.exec(select(Paper)))
    if not _VECTORS:
        assert service.embed_missing(session, settings) == len(rows)
        vectors = store.paper_vectors(session, settings, [p.id for p in rows])  # type: ignore[misc]
        _VECTORS.update({p.title: v for p, v in zip(rows, vectors)})
    else:
        store._store_papers(
            session,
            embedder.model_identity(settings),
            [p.id for p in rows],  # type: ignore[misc]
            np.stack([_VECTORS[p.title] for p in rows]),
        )
    session.commit()
    return {p.title: p.id for p in rows if p.id is not None}


def _titles(session: Session, picks: list[service.Pick]) -> list[str]:
    return [session.get(Paper, p.paper_id).title for p in picks]  # type: ignore[union-attr]


def _has(*words: str) -> Callable[[str], bool]:
    return lambda title: any(w.lower() in title.lower() for w in words)


LABELLED = [
    # keyword-style profiles
    ("graph neural networks, message passing", _has("graph", "GNN", "message passing")),
    ("LoRA, parameter-efficient fine-tuning", _has("LoRA", "Fine-Tuning", "Finetuning", "Tuning", "Adapt")),
    ("5G, wireless networks", _has("5G", "Wireless")),
    ("diffusion models, image generation", _has("Diffusion", "Image", "Generation")),
    ("network pruning", _has("Pruning", "pruned")),
    ("knowledge editing, model editing", _has("Edit", "Knowledge")),
    # plain words, without the field's jargon
    ("teaching computers to understand pictures", _has("Vision", "Image", "Visual", "Video")),
    ("neural networks that solve physics equations", _has("Physics", "PDE", "DeepONet", "Equation")),
    ("fixing wrong facts that chatbots learned", _has("Edit", "Knowledge", "LLM", "Language Model", "CaKE")),
]


@pytest.mark.parametrize(("interests", "relevant"), LABELLED, ids=[p for p, _ in LABELLED])
def test_labelled_profiles_get_their_papers_first(
    session: Session,
    settings: Settings,
    papers: dict[str, int],
    interests: str,
    relevant: Callable[[str], bool],
) -> None:
    picks = service.recommend_for_interests(session, settings, [interests], limit=3)
    titles = _titles(session, picks)
    assert len(titles) == 3, titles
    # The first pick is always right; of the top three at most one may be a near miss.
    assert relevant(titles[0]) and sum(map(relevant, titles)) >= 2, titles


def test_each_interest_of_a_mixed_profile_gets_its_own_papers(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    picks = service.recommend_for_interests(
        session, settings, ["diffusion models, 5G wireless networks"], limit=6
    )
    matched = {p.matched_interest for p in picks}
    assert matched == {"diffusion models", "5G wireless networks"}


def test_acronym_interest_finds_the_paper_that_uses_it(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    picks = service.recommend_for_interests(session, settings, ["LoRA"], limit=3)
    assert len(picks) == 3
    for pick in picks:
        paper = session.get(Paper, pick.paper_id)
        assert "LoRA" in f"{paper.title} {paper.abstract}"  # type: ignore[union-attr]
        assert pick.matched_terms == ("LoRA",) and "LoRA" in (pick.highlight or "")
    assert "PLoP: Precise LoRA Placement for Efficient Finetuning of Large Models" in _titles(session, picks)


def test_every_pick_is_explained(session: Session, settings: Settings, papers: dict[str, int]) -> None:
    picks = service.recommend_for_interests(session, settings, ["graph neural networks"], limit=5)
    assert picks
    for pick in picks:
        paper = session.get(Paper, pick.paper_id)
        assert pick.reason == "interest" and pick.matched_interest == "graph neural networks"
        assert pick.highlight and pick.highlight.rstrip("…")[:40] in paper.abstract  # type: ignore[union-attr]
        assert pick.score >= settings.min_score
    assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True) or len(picks) > 1


def test_nothing_relevant_gives_an_empty_selection(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    assert service.recommend_for_interests(session, settings, ["medieval tax records of Flanders"]) == []


def test_exclusion_removes_papers_that_match_it_strongly(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    plain = _titles(
        session, service.recommend_for_interests(session, settings, ["diffusion models"], limit=8)
    )
    excluded = _titles(
        session,
        service.recommend_for_interests(session, settings, ["diffusion models, -image restoration"], limit=8),
    )
    assert "Zero-Shot Image Restoration Using Denoising Diffusion Null-Space Model" in plain
    assert "Zero-Shot Image Restoration Using Denoising Diffusion Null-Space Model" not in excluded


def _subscriber(session: Session, interests: str, max_papers: int = 5, email: str = "ada@example.org"):  # type: ignore[no-untyped-def]
    data = subscribers.build_create(email, interests, max_papers=max_papers, confirmed=True)
    person = subscribers.create(session, data)
    session.commit()
    return person


def test_recommend_caps_at_max_papers_and_never_resends(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    ada = _subscriber(session, "graph neural networks", max_papers=3)
    first = recommend(session, settings, [ada])[ada.id]
    assert len(first) == 3
    delivery = Delivery(subscriber_id=ada.id, digest_date=date.today(), status=DeliveryStatus.PENDING)
    session.add(delivery)
    session.flush()
    for rank, pick in enumerate(first):
        session.add(
            DeliveryItem(delivery_id=delivery.id, paper_id=pick.paper_id, rank=rank, score=pick.score)
        )
    session.commit()
    second = recommend(session, settings, [ada])[ada.id]
    assert second and not {p.paper_id for p in first} & {p.paper_id for p in second}


def test_candidates_are_papers_since_the_last_sent_digest(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    ada = _subscriber(session, "graph neural networks")
    sent_at = datetime.now(UTC) + timedelta(seconds=1)
    session.add(
        Delivery(subscriber_id=ada.id, digest_date=date.today(), status=DeliveryStatus.SENT, sent_at=sent_at)
    )
    session.commit()
    assert recommend(session, settings, [ada], now=sent_at + timedelta(hours=1))[ada.id] == []
    # Without a sent digest the window applies: ten days later, nothing is new any more.
    bob = _subscriber(session, "graph neural networks", email="bob@example.org")
    later = datetime.now(UTC) + timedelta(days=settings.candidate_window_days + 1)
    assert recommend(session, settings, [bob], now=later)[bob.id] == []
    assert recommend(session, settings, [bob])[bob.id]


def test_followed_author_comes_first_explained_as_such(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    pid = papers["Network Pruning Spaces"]
    session.execute(update(Paper).where(Paper.id == pid).values(authors=["Yann A. LeCun", "Ada Lovelace"]))
    session.commit()
    ada = _subscriber(session, "graph neural networks, author: Yann LeCun")
    picks = recommend(session, settings, [ada])[ada.id]
    assert picks[0].paper_id == pid and picks[0].reason == "author"
    assert picks[0].matched_interest == "author: Yann LeCun"
    assert all(p.reason == "interest" for p in picks[1:])


def test_liked_papers_pull_similar_papers_in_and_disliked_push_them_out(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    ada = _subscriber(session, "medieval tax records of Flanders")
    assert recommend(session, settings, [ada])[ada.id] == []
    liked = papers["Network Pruning via Transformable Architecture Search"]
    record_vote(session, ada.id, liked, 1)
    session.commit()
    picks = recommend(session, settings, [ada])[ada.id]
    assert picks and all(p.reason == "liked" for p in picks)
    assert liked not in {p.paper_id for p in picks}  # a voted paper is not sent again
    assert any("Prun" in t for t in _titles(session, picks))
    top = picks[0].paper_id
    record_vote(session, ada.id, top, -1)
    session.commit()
    again = recommend(session, settings, [ada])[ada.id]
    assert top not in {p.paper_id for p in again}


def test_papers_are_embedded_once_and_a_new_model_reembeds_on_demand(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    assert service.embed_missing(session, settings) == 0
    count = session.exec(select(PaperEmbedding)).all()
    assert len(count) == len(papers)
    other = settings.model_copy(update={"embedding_model": str(embedder._model_location(settings))})
    assert service.embed_missing(session, other) == len(papers)
    assert service.embed_missing(session, other) == 0


def test_phrase_vectors_are_cached_and_shared(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    service.recommend_for_interests(session, settings, ["Graph Neural Networks"])
    service.recommend_for_interests(session, settings, ["graph  neural networks"])
    rows = session.exec(
        select(PhraseEmbedding).where(PhraseEmbedding.phrase == "graph neural networks")
    ).all()
    assert len(rows) == 1


def test_a_corrupted_or_wrong_size_vector_is_reembedded_not_used(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    pid = papers["PLoP: Precise LoRA Placement for Efficient Finetuning of Large Models"]
    other = papers["Network Pruning Spaces"]
    good = store.paper_vectors(session, settings, [pid, other])
    session.execute(
        update(PaperEmbedding).where(PaperEmbedding.paper_id == pid).values(vector=b"\x00" * 1536)
    )
    session.execute(
        update(PaperEmbedding).where(PaperEmbedding.paper_id == other).values(dim=3, vector=b"\x00" * 12)
    )
    session.commit()
    again = store.paper_vectors(session, settings, [pid, other], dim=good.shape[1])
    assert np.allclose(again, good, atol=1e-5)
    stored = session.exec(select(PaperEmbedding).where(PaperEmbedding.paper_id == other)).one()
    assert stored.dim == good.shape[1]


def test_a_model_path_that_does_not_exist_names_the_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = Settings(embedding_model=str(tmp_path / "no-such-model"))
    with pytest.raises(UserError, match="NEWSLETTER_EMBEDDING_MODEL"):
        embedder.encode(bad, ["x"])


def test_votes_are_idempotent_and_undoable(
    session: Session, settings: Settings, papers: dict[str, int]
) -> None:
    from subscribers.feedback import votes_for

    ada = _subscriber(session, "LoRA")
    pid = next(iter(papers.values()))
    record_vote(session, ada.id, pid, 1)
    record_vote(session, ada.id, pid, 1)
    assert votes_for(session, [ada.id]).get(ada.id, {}) == {pid: 1}
    record_vote(session, ada.id, pid, -1)
    assert votes_for(session, [ada.id]).get(ada.id, {}) == {pid: -1}
    record_vote(session, ada.id, pid, 0)
    record_vote(session, ada.id, pid, 0)
    assert votes_for(session, [ada.id]).get(ada.id, {}) == {}
    with pytest.raises(UserError):
        record_vote(session, ada.id, pid, 2)
