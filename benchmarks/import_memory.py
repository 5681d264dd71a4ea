"""Import speed and peak memory of `papers import` for arXiv metadata snapshots.

Imports the real 2,000-record sample, then a synthetic snapshot of N records (default
100,000) made by repeating the sample with fresh ids and perturbed titles, each into a fresh
SQLite database in its own process, and prints rows/s and peak RSS. Bounded memory shows as
a peak RSS that does not grow with the file: the 100k import should peak near the 2k one.

    .venv/bin/python benchmarks/import_memory.py [--records 100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "eval" / "arxiv-2007" / "arxiv-metadata-sample.jsonl"


def write_synthetic_snapshot(sample: Path, target: Path, records: int) -> Path:
    """`records` snapshot lines: the sample's, repeated with new ids (9901.00000…) and titles."""
    lines = [json.loads(line) for line in sample.read_text(encoding="utf-8").splitlines() if line]
    with target.open("w", encoding="utf-8") as out:
        for n in range(records):
            row = dict(lines[n % len(lines)])
            row["id"] = f"{9000 + n // 100000:04d}.{n % 100000:05d}"
            row["title"] = f"{row['title']} (copy {n // len(lines)})"
            out.write(json.dumps(row) + "\n")
    return target


def _measure(path: Path, home: Path) -> dict[str, float]:
    """Import `path` into a fresh database in a child process; its rows/s and peak RSS."""
    code = (
        "import sys, time, resource\n"
        "from pathlib import Path\n"
        "from newsletter.db import open_database, session_scope\n"
        "from newsletter.papers.importers import import_file\n"
        "from newsletter.settings import Settings\n"
        "engine = open_database(Settings())\n"
        "start = time.perf_counter()\n"
        "with session_scope(engine) as session:\n"
        "    result = import_file(session, Path(sys.argv[1]))\n"
        "elapsed = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(result.stats.new, elapsed, peak)\n"
    )
    env = {
        "NEWSLETTER_HOME": str(home),
        "NEWSLETTER_SECRET_KEY": "benchmark",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    new, elapsed, peak = done.stdout.split()
    return {"rows": int(new), "seconds": float(elapsed), "peak_rss_mib": float(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="size of the synthetic snapshot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = write_synthetic_snapshot(SAMPLE, Path(tmp) / "synthetic.jsonl", args.records)
        for label, path in (
            ("sample (2,000 records)", SAMPLE),
            (f"synthetic ({args.records:,})", synthetic),
        ):
            size = path.stat().st_size / 2**20
            m = _measure(path, Path(tmp) / label.split()[0])
            print(
                f"{label}: {size:.1f} MiB file, {m['rows']:,} papers in {m['seconds']:.1f} s "
                f"= {m['rows'] / m['seconds']:,.0f} rows/s, peak RSS {m['peak_rss_mib']:.0f} MiB"
            )


if __name__ == "__main__":
    main()
