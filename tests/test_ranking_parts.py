"""The pure parts of ranking: lexical matching, author names, scoring, MMR, highlights.

These run without the model or a database, on small hand-made vectors and texts.
"""

from __future__ import annotations

import numpy as np

from newsletter.ranking import explain, lexical, scoring, select, store
from newsletter.ranking.authors import AuthorIndex, parse_name, same_person
from newsletter.ranking.profiles import profile_for


def test_acronyms_and_plurals_count_as_exact_terms() -> None:
    texts = [
        "PLoP: precise LoRA placement for efficient finetuning of large models.",
        "Self-dimensioning of small cell capacity in multitenant 5G networks.",
        "Physics-informed neural networks (PINNs) for the heat equation.",
        "A survey of image restoration with diffusion models.",
    ]
    index = lexical.build_index(texts)
    scores = lexical.scores(index, ["LoRA", "5G", "PINN", "diffusion models"])
    assert list(scores.argmax(axis=1)) == [0, 1, 2, 3]
    assert scores[0, 0] > 0.5 and scores[0, 1:].max() == 0


def test_lexical_scores_are_a_share_of_the_phrase_so_missing_rare_words_cost() -> None:
    index = lexical.build_index(["graph neural networks for molecules", "neural networks"])
    both, only_common = lexical.scores(index, ["graph neural networks", "PINN neural networks"])
    assert 0 < only_common.max() < both.max() <= 1.0


def test_matched_terms_are_reported_as_typed() -> None:
    assert lexical.matched_terms("LoRA, graph networks", "We place LoRA adapters in networks.") == (
        "LoRA",
        "networks",
    )


def test_author_names_match_across_initials_accents_middle_names_and_order() -> None:
    followed = parse_name("Yann LeCun")
    assert followed is not None
    for byline in ["Y. LeCun", "Yann A. LeCun", "LeCun, Yann", "Yann Lécun", "yann lecun"]:
        name = parse_name(byline)
        assert name is not None and same_person(followed, name), byline
    for other in ["Jann LeCun", "Yann Dauphin", "B. LeCun"]:
        name = parse_name(other)
        assert name is not None and not same_person(followed, name), other
    assert same_person(parse_name("C. Balázs"), parse_name("Csaba Bal\\'azs"))  # type: ignore[arg-type]


def test_author_index_finds_the_papers_of_a_followed_author() -> None:
    index = AuthorIndex([["Geoffrey E. Hinton", "A. Krizhevsky"], ["Y. Bengio"], ["G Hinton"]])
    assert index.papers_by("Geoffrey Hinton") == [0, 2]
    assert index.papers_by("Nobody Here") == []


def test_profile_phrases_are_sorted_into_interests_authors_and_exclusions() -> None:
    profile = profile_for(["LoRA", "author: Yann LeCun", "-medical imaging", "GNNs"])
    assert profile.phrases == ("LoRA", "GNNs")
    assert profile.authors == ("Yann LeCun",)
    assert profile.excludes == ("medical imaging",)


def _unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_each_interest_is_scored_separately_not_as_a_blurred_average() -> None:
    signals = np.array([[0.8, 0.1, 0.45], [0.1, 0.7, 0.45]], dtype=np.float32)  # 2 phrases × 3
    index = scoring.ProfileIndex(
        positive=np.array([[0, 1]]), exclude=np.zeros((1, 0), int), disliked=np.zeros((1, 0), int)
    )
    no_prior = np.zeros(3, np.float32)
    pure_max = scoring.Weights(breadth=0)
    scores, which = scoring.profile_scores(signals, signals, index, no_prior, pure_max)
    assert scores[0, 0] == np.float32(0.8) and scores[0, 1] == np.float32(0.7)
    assert list(which[0]) == [0, 1, 0]
    # With the breadth bonus too, the paper squarely on one interest beats the one halfway.
    scores, _ = scoring.profile_scores(signals, signals, index, no_prior)
    assert scores[0, 2] < scores[0, 1] < scores[0, 0]


def test_several_phrases_also_score_as_one_profile_yet_sharp_matches_stay_first() -> None:
    phrases = np.stack([_unit(1, 0, 0), _unit(0, 1, 0)])
    index = np.array([[0, 1], [0, -1]])  # a two-phrase profile and a one-phrase profile
    norms = scoring.mean_norms(phrases, index)
    assert np.allclose(norms, [1 / np.sqrt(2), 1.0])  # |mean of two orthogonal unit vectors|
    signals = np.array([[0.8, 0.1, 0.45], [0.1, 0.7, 0.45]], dtype=np.float32)
    profiles = scoring.ProfileIndex(index, np.zeros((2, 0), int), np.zeros((2, 0), int), norms)
    weights = scoring.Weights(breadth=0, blend=0.7)
    no_prior = np.zeros(3, np.float32)
    scores, which = scoring.profile_scores(signals, signals, profiles, no_prior, weights)
    whole = signals.mean(axis=0) / norms[0]  # cosine with the normalised mean vector
    assert np.allclose(scores[0], 0.3 * signals.max(axis=0) + 0.7 * whole)
    assert scores[0, 2] < scores[0, 1] < scores[0, 0]  # one interest squarely beats halfway
    assert np.array_equal(scores[1], signals[0])  # one phrase: nothing to blend
    assert list(which[0]) == [0, 1, 0]


def test_exclusions_drop_strong_matches_and_disliked_papers_push_away() -> None:
    signals = np.array([[0.6, 0.6, 0.6], [0.9, 0.1, 0.1]], dtype=np.float32)
    dense = np.array([[0, 0, 0], [0, 0.9, 0.2]], dtype=np.float32)
    index = scoring.ProfileIndex(positive=np.array([[0]]), exclude=np.array([[1]]), disliked=np.array([[1]]))
    scores, _ = scoring.profile_scores(signals, dense, index, np.zeros(3, np.float32))
    assert scores[0, 0] == -np.inf  # matches the exclusion strongly
    assert scores[0, 1] < scores[0, 2] == np.float32(0.6)  # close to a disliked paper


def test_mmr_keeps_near_duplicates_from_filling_the_email() -> None:
    a, b = _unit(1, 0, 0), _unit(0, 1, 0)
    dup = _unit(1, 0.02, 0)
    vectors = np.stack([a, dup, _unit(1, 0.01, 0.01), b])
    scores = np.array([[0.90, 0.89, 0.88, 0.70]], dtype=np.float32)
    picked, values = select.mmr(scores, vectors, np.array([2]), min_score=0.3)
    assert list(picked[0]) == [0, 3]
    assert values[0, 0] == np.float32(0.9)


def test_selection_respects_threshold_and_cap_and_may_be_empty() -> None:
    vectors = np.eye(4, dtype=np.float32)
    scores = np.array([[0.9, 0.8, 0.2, 0.1], [0.1, 0.2, 0.3, 0.2]], dtype=np.float32)
    picked, _ = select.mmr(scores, vectors, np.array([3, 3]), min_score=0.35)
    assert list(picked[0]) == [0, 1, -1] and list(picked[1]) == [-1, -1, -1]
    picked, _ = select.mmr(scores[:1], vectors, np.array([1]), min_score=0.35)
    assert list(picked[0]) == [0]


def test_feedback_moves_a_phrase_toward_its_best_matches_and_stays_unit_length() -> None:
    query = _unit(1, 1, 0)[None, :]
    papers = np.stack([_unit(1, 0, 0), _unit(1, 0.1, 0), _unit(0, 0, 1)])
    fused = query @ papers.T
    moved = scoring.refine(query, papers, fused, scoring.Weights(feedback=1.0, feedback_top=2))
    assert abs(np.linalg.norm(moved) - 1) < 1e-5
    assert float(moved[0] @ papers[0]) > float(query[0] @ papers[0])


def test_prior_rewards_upvotes_and_freshness_but_stays_small() -> None:
    bonus = scoring.prior(np.array([0, 100, 0], np.float32), np.array([30, 30, 0], np.float32))
    assert bonus[1] > bonus[0] and bonus[2] > bonus[0]
    assert bonus.max() <= scoring.WEIGHTS.popularity + scoring.WEIGHTS.recency


def test_highlight_is_the_sentence_about_the_interest() -> None:
    abstract = (
        "Large models are expensive to adapt to new tasks. "
        "We show where to place LoRA adapters so that finetuning is precise and cheap. "
        "Experiments cover many benchmarks and model sizes."
    )
    assert "LoRA adapters" in (explain.highlight("LoRA", None, abstract) or "")
    assert explain.highlight("LoRA", None, "") is None


def test_stored_vectors_that_are_corrupted_or_the_wrong_size_are_rejected() -> None:
    vector = _unit(1, 2, 3)
    row = store.encode_row(vector)
    assert np.allclose(store.decode(row["dim"], row["vector"], row["checksum"], 3), vector)  # type: ignore[arg-type]
    flipped = bytearray(row["vector"])  # type: ignore[arg-type]
    flipped[5] ^= 0xFF
    assert store.decode(3, bytes(flipped), row["checksum"], 3) is None  # type: ignore[arg-type]
    assert store.decode(3, row["vector"][:8], row["checksum"], 3) is None  # type: ignore[index,arg-type]
    assert store.decode(3, row["vector"], row["checksum"], 384) is None  # type: ignore[arg-type]
