"""Scale benchmark: ranking many subscribers, and embedding throughput.

    .venv/bin/python benchmarks/scale.py [--subscribers 10000 100000 300000] [--db PATH]

`--subscribers 100000` times one size alone; `--db PATH` keeps the database there and, on a
later run, reuses it (skipping the minutes of embedding) to time ranking changes quickly.

Builds a SQLite database in a temporary folder with the 2,000 arXiv-2007 papers (first seen
yesterday) and N subscribers with 3–5 interests each, drawn from ~3,000 realistic phrases
(frequent title n-grams of arXiv-2007 and CSFCube, plus arXiv category names).
1. Embedding: papers/s of `embed_missing` vs raw `SentenceTransformer.encode` on the same
   texts in the same process; then a second `embed_missing`, which must embed 0.
2. Ranking: for each N, a fresh process runs `recommend()` for everyone (CALLER_CHUNK a call) (vectors and phrase
   vectors already stored, highlights included) and reports wall seconds and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"
#: Subscribers per recommend() call, as a digest job would hand them over.
CALLER_CHUNK = 10_000
#: Papers timed per embedding round, and rounds (best of each kept).
EMBED_SAMPLE = 400
ROUNDS = 3


def _peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not getrusage: ru_maxrss survives fork+exec, so a child
    of the (model-holding) parent would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _phrases() -> list[str]:
    from sklearn.feature_extraction.text import CountVectorizer

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from relevance import CATEGORIES

    titles = [json.loads(x)["title"] for x in (EVAL / "csfcube" / "csfcube_papers.jsonl").open()]
    titles += [json.loads(x)["title"] for x in (EVAL / "arxiv-2007" / "arxiv-metadata-sample.jsonl").open()]
    vec = CountVectorizer(
        ngram_range=(2, 3), stop_words="english", min_df=2, token_pattern=r"(?u)\b[A-Za-z][A-Za-z0-9-]+\b"
    )
    counts = vec.fit_transform(titles).sum(axis=0).A1
    terms = vec.get_feature_names_out()
    top = [terms[i] for i in counts.argsort()[::-1][:3000]]
    return sorted(set(top) | {name for name, _k, _p in CATEGORIES.values()})


def setup(db: Path, sizes: list[int]) -> dict[str, float]:
    """Create the database: papers (embedded, timed), phrases (embedded), subscribers."""
    import os

    os.environ["NEWSLETTER_DATABASE_URL"] = f"sqlite:///{db}"
    from sqlalchemy import delete, insert
    from sqlmodel import col, select

    from newsletter.db import open_database, session_scope
    from newsletter.papers.models import Paper
    from newsletter.ranking import embedder, service, store
    from newsletter.ranking.models import PaperEmbedding
    from newsletter.settings import Settings
    from subscribers.models import Subscriber

    settings = Settings()
    engine = open_database(settings)
    rows = [json.loads(x) for x in (EVAL / "arxiv-2007" / "arxiv-metadata-sample.jsonl").open()]
    seen = datetime.now(UTC) - timedelta(days=1)
    with session_scope(engine) as session:
        session.execute(
            insert(Paper),
            [
                {
                    "source": "bench",
                    "source_id": r["id"],
                    "arxiv_id": r["id"],
                    "title": " ".join(r["title"].split()),
                    "abstract": " ".join(r["abstract"].split()),
                    "authors": [a.strip() for a in r["authors"].split(",")][:20],
                    "categories": r["categories"].split(),
                    "title_key": r["id"],
                    "title_raw": r["title"],
                    "abstract_raw": r["abstract"],
                    "links": {},
                    "first_seen_at": seen,
                    "modified_at": seen,
                }
                for r in rows
            ],
        )
    texts = {
        r["id"]: store.paper_text(" ".join(r["title"].split()), " ".join(r["abstract"].split())) for r in rows
    }
    model = embedder.get_model(settings)
    model.encode(list(texts.values())[:64], batch_size=settings.embedding_batch_size)  # warm-up
    with session_scope(engine) as session:
        count = service.embed_missing(session, settings)
    with session_scope(engine) as session:
        second = service.embed_missing(session, settings)
    # Throughput: ROUNDS alternating timings of the same papers (best of each), because other
    # processes on a shared machine make any single timing noisy.
    raw = ours = 0.0
    with session_scope(engine) as session:
        ids = {p.arxiv_id: p.id for p in session.exec(select(Paper))}
    sample = sorted(texts)[:EMBED_SAMPLE]
    for _ in range(ROUNDS):
        start = time.perf_counter()
        model.encode(
            [texts[a] for a in sample], batch_size=settings.embedding_batch_size, normalize_embeddings=True
        )
        raw = max(raw, len(sample) / (time.perf_counter() - start))
        with session_scope(engine) as session:
            session.execute(
                delete(PaperEmbedding).where(col(PaperEmbedding.paper_id).in_([ids[a] for a in sample]))
            )
        with session_scope(engine) as session:
            start = time.perf_counter()
            done = service.embed_missing(session, settings)
            ours = max(ours, done / (time.perf_counter() - start))
    phrases = _phrases()
    with session_scope(engine) as session:
        store.phrase_vectors(session, settings, phrases)
    rng = random.Random(7)
    biggest = max(sizes)
    with session_scope(engine) as session:
        for start_at in range(0, biggest, 20_000):
            session.execute(
                insert(Subscriber),
                [
                    {
                        "email": f"s{i}@example.org",
                        "email_key": f"s{i}@example.org",
                        "status": "active",
                        "interests": rng.sample(phrases, rng.randint(3, 5)),
                        "timezone": "UTC",
                        "send_hour": 7,
                        "frequency": "daily",
                        "weekday": 0,
                        "max_papers": 10,
                        "send_empty": False,
                        "created_at": seen,
                        "updated_at": seen,
                    }
                    for i in range(start_at, min(start_at + 20_000, biggest))
                ],
            )
    return {
        "raw_encode_papers_per_s": raw,
        "embed_missing_papers_per_s": ours,
        "embedded_first_run": count,
        "embedded_second_run": second,
        "phrases": len(phrases),
    }


def rank(db: Path, n: int) -> dict[str, float]:
    """In this (fresh) process: recommend() for the first n subscribers."""
    import os

    os.environ["NEWSLETTER_DATABASE_URL"] = f"sqlite:///{db}"
    from sqlmodel import col, select

    from jobs.compose import recommend
    from newsletter.db import open_database, session_scope
    from newsletter.settings import Settings
    from subscribers.models import Subscriber

    settings = Settings()
    engine = open_database(settings)
    start = time.perf_counter()
    sizes: list[int] = []
    with session_scope(engine) as session:
        people = list(session.exec(select(Subscriber).order_by(col(Subscriber.id)).limit(n)))
        for at in range(0, len(people), CALLER_CHUNK):
            picks = recommend(session, settings, people[at : at + CALLER_CHUNK])
            sizes += [len(p) for p in picks.values()]
    seconds = time.perf_counter() - start
    return {
        "subscribers": n,
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "mean_picks": sum(sizes) / max(len(sizes), 1),
        "empty": sum(1 for s in sizes if not s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    parser.add_argument(
        "--db",
        type=Path,
        help="keep the benchmark database here; reuse it if it exists (no embedding timings then)",
    )
    parser.add_argument("--rank-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_only:
        print(json.dumps(rank(args.db, args.rank_only)))
        return
    with tempfile.TemporaryDirectory() as folder:
        db = args.db or Path(folder) / "bench.db"
        sys.stdout.reconfigure(line_buffering=True)
        if db.exists():
            print(
                f"reusing {db} (embedding not timed; it must hold >= {max(args.subscribers):,} subscribers)"
            )
        else:
            info = setup(db, args.subscribers)
            ratio = info["embed_missing_papers_per_s"] / info["raw_encode_papers_per_s"]
            print(
                f"embedding: raw encode {info['raw_encode_papers_per_s']:.1f} papers/s, "
                f"embed_missing {info['embed_missing_papers_per_s']:.1f} papers/s (ratio {ratio:.2f}); "
                f"first run embedded {info['embedded_first_run']}, second run {info['embedded_second_run']}"
            )
            print(f"{info['phrases']} distinct phrases; 2,000 candidate papers")
        print(f"{'subscribers':>12} {'seconds':>9} {'peak RSS MB':>12} {'mean picks':>11} {'empty':>7}")
        for n in args.subscribers:
            out = subprocess.run(
                [sys.executable, __file__, "--rank-only", str(n), "--db", str(db)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"{n:>12,} {r['seconds']:>9.1f} {r['peak_rss_mb']:>12.0f} {r['mean_picks']:>11.1f} {r['empty']:>7,}",
                flush=True,
            )


if __name__ == "__main__":
    main()
