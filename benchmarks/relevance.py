"""Relevance benchmark: the project's ranker against tf-idf and plain-embedding baselines.

    .venv/bin/python benchmarks/relevance.py [--cache DIR]

Prints one table. Data: ../shared/eval (arXiv 2007 sample; CSFCube). Protocols:
- arxiv-2007: for each of the 24 most common primary categories, a profile made of the
  category's human name from arXiv's taxonomy (also: a keyword-style profile and a plain-words
  profile written for this benchmark); gain 2 = primary category, 1 = cross-listed;
  nDCG@10 over all 2,000 papers, averaged over the categories.
- CSFCube: each query paper is the profile's one liked paper; its judged pool is re-ranked
  per facet; nDCG@20 with the graded (0–3) judgments, averaged over query×facet.
Baselines computed in the same run: tf-idf cosine (scikit-learn, fitted on the ranked set)
and the cosine of one embedding of the whole interest string (or of the liked paper).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from newsletter.ranking import embedder, ranker  # noqa: E402
from newsletter.ranking.profiles import Profile, profile_for  # noqa: E402
from newsletter.ranking.store import paper_text, phrase_key  # noqa: E402
from newsletter.settings import Settings  # noqa: E402

SHARED = ROOT.parent / "shared" / "eval"

#: category → (arXiv taxonomy name, keyword-style profile, plain-words profile)
CATEGORIES: dict[str, tuple[str, str, str]] = {
    "astro-ph": (
        "Astrophysics",
        "galaxies, stars, cosmology, supernovae",
        "how stars and galaxies form and shine",
    ),
    "hep-ph": (
        "High Energy Physics - Phenomenology",
        "collider phenomenology, QCD, neutrino masses, supersymmetry",
        "predicting what particle colliders will see",
    ),
    "hep-th": (
        "High Energy Physics - Theory",
        "string theory, AdS/CFT, gauge theory, branes",
        "mathematical theories of fundamental forces and strings",
    ),
    "quant-ph": (
        "Quantum Physics",
        "entanglement, qubits, quantum information, decoherence",
        "computers and communication built on quantum effects",
    ),
    "cond-mat.str-el": (
        "Strongly Correlated Electrons",
        "Hubbard model, Mott insulator, Kondo",
        "materials where electrons strongly repel each other",
    ),
    "cond-mat.mtrl-sci": (
        "Materials Science",
        "thin films, DFT, alloys, crystal structure",
        "what solids are made of and how their atoms are arranged",
    ),
    "gr-qc": (
        "General Relativity and Quantum Cosmology",
        "black holes, gravitational waves, spacetime, Einstein equations",
        "gravity, curved space and the origin of the universe",
    ),
    "cond-mat.mes-hall": (
        "Mesoscale and Nanoscale Physics",
        "quantum dots, graphene, nanowires, spin transport",
        "electrons moving through tiny devices",
    ),
    "cond-mat.stat-mech": (
        "Statistical Mechanics",
        "phase transitions, Ising model, entropy",
        "how many interacting particles behave on average",
    ),
    "nucl-th": (
        "Nuclear Theory",
        "nuclear structure, nucleons, heavy-ion collisions",
        "what holds the atomic nucleus together",
    ),
    "cond-mat.supr-con": (
        "Superconductivity",
        "superconductors, cuprates, pairing, vortices",
        "materials that carry current with no resistance",
    ),
    "math.PR": (
        "Probability",
        "stochastic processes, random walks, Brownian motion",
        "the mathematics of chance",
    ),
    "math.AG": (
        "Algebraic Geometry",
        "varieties, schemes, moduli spaces, sheaves",
        "shapes defined by polynomial equations",
    ),
    "math-ph": (
        "Mathematical Physics",
        "operators, integrable systems, spectral theory",
        "rigorous mathematics behind physical laws",
    ),
    "cond-mat.other": (
        "Other Condensed Matter",
        "Bose-Einstein condensates, cold atoms, solids",
        "unusual behaviour of matter at low temperature",
    ),
    "math.AP": (
        "Analysis of PDEs",
        "partial differential equations, existence, regularity",
        "equations describing how things change in space and time",
    ),
    "math.CO": (
        "Combinatorics",
        "graphs, permutations, enumeration, partitions",
        "counting and arranging discrete objects",
    ),
    "physics.gen-ph": (
        "General Physics",
        "physics foundations, relativity, ether, energy",
        "new ideas about the basic laws of nature",
    ),
    "physics.optics": (
        "Optics",
        "lasers, photonic crystals, waveguides, nonlinear optics",
        "how light travels and is controlled",
    ),
    "cond-mat.soft": (
        "Soft Condensed Matter",
        "polymers, colloids, liquid crystals, granular",
        "squishy materials like gels and foams",
    ),
    "math.NT": (
        "Number Theory",
        "primes, modular forms, L-functions, Diophantine",
        "properties of whole numbers",
    ),
    "hep-ex": (
        "High Energy Physics - Experiment",
        "detector, collider measurement, LHC, decays",
        "measurements made at particle accelerators",
    ),
    "math.DG": (
        "Differential Geometry",
        "Riemannian manifolds, curvature, geodesics",
        "geometry of smooth curved spaces",
    ),
    "cs.IT": (
        "Information Theory",
        "channel capacity, coding, MIMO, entropy",
        "how much data can be sent reliably over noisy links",
    ),
}

_TEX = re.compile(r"\s+")


def ndcg(gains_in_order: np.ndarray, all_gains: np.ndarray, k: int) -> float:
    """nDCG@k with exponential-free (linear) gains, as trec_eval's ndcg_cut."""
    discounts = 1 / np.log2(np.arange(2, k + 2))
    dcg = float((gains_in_order[:k] * discounts[: len(gains_in_order[:k])]).sum())
    ideal = np.sort(all_gains)[::-1][:k]
    idcg = float((ideal * discounts[: len(ideal)]).sum())
    return dcg / idcg if idcg > 0 else 0.0


def embed_cached(settings: Settings, texts: list[str], cache: Path | None) -> np.ndarray:
    """Vectors of texts (cached on disk by content when --cache is given)."""
    if cache is None:
        return embedder.encode(settings, texts)
    digest = hashlib.sha256(("\x00".join(texts) + embedder.model_identity(settings)).encode())
    path = cache / f"{digest.hexdigest()[:24]}.npy"
    if path.exists():
        return np.load(path)
    vectors = embedder.encode(settings, texts)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def candidates(
    ids: list[int], titles: list[str], abstracts: list[str], vectors: np.ndarray
) -> ranker.Candidates:
    n = len(ids)
    return ranker.Candidates(
        ids=np.asarray(ids),
        vectors=vectors,
        titles=titles,
        abstracts=abstracts,
        bylines=[[] for _ in range(n)],
        prior=np.zeros(n, dtype=np.float32),
    )


def ranker_scores(
    cands: ranker.Candidates, profiles: list[Profile], phrase_vecs: dict, voted: dict
) -> np.ndarray:
    """The project's relevance of every candidate for every profile (before selection)."""
    signals = ranker.build_signals(cands, profiles, phrase_vecs, voted)
    scores, _, _ = ranker.score_chunk(cands, signals, profiles)
    return scores


def tfidf_scores(texts: list[str], queries: list[str]) -> np.ndarray:
    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english")
    docs = vec.fit_transform(texts)
    return (vec.transform(queries) @ docs.T).toarray()


def arxiv(settings: Settings, cache: Path | None) -> dict[str, dict[str, float]]:
    rows = [json.loads(line) for line in (SHARED / "arxiv-2007" / "arxiv-metadata-sample.jsonl").open()]
    titles = [_TEX.sub(" ", r["title"]).strip() for r in rows]
    abstracts = [_TEX.sub(" ", r["abstract"]).strip() for r in rows]
    texts = [paper_text(t, a) for t, a in zip(titles, abstracts)]
    vectors = embed_cached(settings, texts, cache)
    cands = candidates(list(range(len(rows))), titles, abstracts, vectors)
    cats = [r["categories"].split() for r in rows]
    results: dict[str, dict[str, float]] = defaultdict(dict)
    for style, pos in (("taxonomy name", 0), ("keywords", 1), ("plain words", 2)):
        profiles_text = [CATEGORIES[c][pos] for c in CATEGORIES]
        gains = np.array(
            [[2.0 if cs[0] == c else 1.0 if c in cs else 0.0 for cs in cats] for c in CATEGORIES]
        )
        profiles = [profile_for([p.strip() for p in t.split(",")]) for t in profiles_text]
        phrases = sorted({x for p in profiles for x in p.phrases})
        pv = dict(zip([phrase_key(x) for x in phrases], embed_cached(settings, phrases, cache)))
        whole = embed_cached(settings, profiles_text, cache)
        systems = {
            "ranker": ranker_scores(cands, profiles, pv, {}),
            "tf-idf": tfidf_scores(texts, profiles_text),
            "MiniLM whole string": whole @ vectors.T,
        }
        for name, matrix in systems.items():
            values = [ndcg(g[np.argsort(-m, kind="stable")], g, 10) for m, g in zip(matrix, gains)]
            results[f"arxiv-2007 nDCG@10 ({style})"][name] = float(np.mean(values))
    return results


def csfcube(settings: Settings, cache: Path | None) -> dict[str, dict[str, float]]:
    base = SHARED / "csfcube"
    papers = {}
    for line in (base / "csfcube_papers.jsonl").open():
        r = json.loads(line)
        papers[r["paper_id"]] = (r["title"].strip(), (r.get("abstract") or "").strip())
    qrels: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    with (base / "csfcube_qrels.tsv").open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels[(row["query_pid"], row["facet"])][row["cand_pid"]] = int(row["rel"])
    pids = sorted(papers)
    pos = {p: i for i, p in enumerate(pids)}
    texts = [paper_text(*papers[p]) for p in pids]
    vectors = embed_cached(settings, texts, cache)
    totals: dict[str, list[float]] = defaultdict(list)
    for (query, _facet), judged in sorted(qrels.items()):
        pool = [p for p in judged if p in pos and p != query]
        cols = [pos[p] for p in pool]
        gains = np.array([judged[p] for p in pool], dtype=float)
        cands = candidates(cols, [papers[p][0] for p in pool], [papers[p][1] for p in pool], vectors[cols])
        qi = pos[query]
        voted = {qi: ranker.VotedPaper(vectors[qi], *papers[query])}
        profile = Profile(liked=(qi,))
        systems = {
            "ranker": ranker_scores(cands, [profile], {}, voted)[0],
            "tf-idf": tfidf_scores([texts[c] for c in cols], [texts[qi]])[0],
            "MiniLM whole string": vectors[cols] @ vectors[qi],
        }
        for name, s in systems.items():
            totals[name].append(ndcg(gains[np.argsort(-s, kind="stable")], gains, 20))
    return {"CSFCube nDCG@20 (liked paper)": {k: float(np.mean(v)) for k, v in totals.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="Keep vectors here between runs.")
    args = parser.parse_args()
    settings = Settings()
    results = {**arxiv(settings, args.cache), **csfcube(settings, args.cache)}
    names = ["ranker", "tf-idf", "MiniLM whole string"]
    print(f"model: {embedder.model_identity(settings)}")
    print(f"{'benchmark':<40} " + " ".join(f"{n:>20}" for n in names) + f" {'vs best baseline':>17}")
    for bench, row in results.items():
        margin = row["ranker"] - max(row["tf-idf"], row["MiniLM whole string"])
        print(f"{bench:<40} " + " ".join(f"{row[n]:>20.3f}" for n in names) + f" {margin:>+17.3f}")


if __name__ == "__main__":
    main()
