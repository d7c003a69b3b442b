"""Loading the search index from the database, and exact top-1 search, at 10k-1M templates.

    python bench/store.py [--sizes 10000,100000,1000000] [--url sqlite:///...]

Synthetic unit vectors (10 templates per person) are written once per size with bulk
inserts into a fresh SQLite file (or the database at ``--url``), then timed:
``Store.load_gallery`` (database -> in-memory index) and ``Gallery.identify`` for one
query (float32 matrix product + best match). Medians.
Last line: ``load_100k_s=X search_100k_ms=Y search_1m_ms=Z``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from facegate.gallery.index import new_id
from facegate.store.db import make_engine, upgrade
from facegate.store.repository import Store
from facegate.store.schema import CollectionRow, PersonRow, TemplateRow

MODEL = "bench_model"
DIM = 128
PER_PERSON = 10


def fill(store: Store, n_templates: int, rng: np.random.Generator) -> None:
    """Bulk-insert ``n_templates`` random unit vectors, ``PER_PERSON`` per person."""
    now = time.time()
    with store.engine.begin() as conn:
        coll = conn.execute(insert(CollectionRow).values(name="default", created_at=now)).inserted_primary_key[0]
        n_people = n_templates // PER_PERSON
        for start in range(0, n_people, 10_000):
            people = [
                {
                    "public_id": new_id("p"),
                    "collection_id": coll,
                    "name": f"person {i}",
                    "meta": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(start, min(n_people, start + 10_000))
            ]
            conn.execute(insert(PersonRow), people)
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM people ORDER BY id")]
        for start in range(0, n_templates, 50_000):
            count = min(n_templates, start + 50_000) - start
            vectors = rng.normal(size=(count, DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            rows = [
                {
                    "public_id": new_id("t"),
                    "person_id": ids[(start + i) // PER_PERSON],
                    "model_id": MODEL,
                    "dim": DIM,
                    "embedding": vectors[i].astype("<f4").tobytes(),
                    "quality": 1.0,
                    "source": "",
                    "chip_jpeg": None,
                    "created_at": now,
                }
                for i in range(count)
            ]
            conn.execute(insert(TemplateRow), rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    results = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            upgrade(engine)
            store = Store(engine)
            t = time.perf_counter()
            fill(store, size, rng)
            fill_s = time.perf_counter() - t
            loads = []
            for _ in range(3):
                t = time.perf_counter()
                gallery = store.load_gallery(MODEL)
                loads.append(time.perf_counter() - t)
            assert gallery.template_count == size
            queries = rng.normal(size=(args.queries, DIM)).astype(np.float32)
            gallery.identify(queries[:1])  # warm
            times = []
            for q in queries:
                t = time.perf_counter()
                gallery.identify(q[None])
                times.append(time.perf_counter() - t)
            load_s, search_ms = statistics.median(loads), statistics.median(times) * 1000
            results[size] = (load_s, search_ms)
            print(
                f"templates={size:>9,} write_s={fill_s:7.1f} load_s={load_s:6.2f} search_ms={search_ms:7.2f}",
                flush=True,
            )
            engine.dispose()
    fmt = {10_000: "10k", 100_000: "100k", 1_000_000: "1m"}
    line = []
    for size, label in fmt.items():
        if size in results:
            if size == 100_000:
                line.append(f"load_100k_s={results[size][0]:.2f}")
            line.append(f"search_{label}_ms={results[size][1]:.2f}")
    print(" ".join(line))


if __name__ == "__main__":
    main()
