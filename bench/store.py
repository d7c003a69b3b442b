"""Loading the search index from the database, and exact top-1 search, at 10k-1M templates.

    python bench/store.py [--sizes 10000,100000,1000000] [--url sqlite:///...]

Synthetic unit vectors (10 templates per person) are written once per size with bulk
inserts into a fresh SQLite file (or the database at ``--url``), then timed:
``Store.index_rows`` + ``build_gallery`` (database -> in-memory index, int8 prefilter included), the live
index's reload after one more person is enrolled (only that person is read), and
``Gallery.identify`` for one query (exact: int8 shortlist re-scored in float32, or the full
float32 product below 20k templates), beside the plain float32 product over every
template. Half the queries are near an enrolled template, half are strangers. Medians.
``--hnsw`` adds faiss's HNSW graph (approximate) with its build time and recall@1.
Last line: ``load_100k_s=X search_100k_ms=Y search_1m_ms=Z``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

from facegate.core.ids import new_id
from facegate.gallery.decision import DecisionPolicy
from facegate.gallery.index import similarities
from facegate.service.indexes import LiveIndex, build_gallery
from facegate.store.db import make_engine, upgrade
from facegate.store.records import DEFAULT_COLLECTION, NewTemplate
from facegate.store.repository import Store
from facegate.store.schema import CollectionRow, PersonRow, TemplateRow

MODEL = "bench_model"
DIM = 128
PER_PERSON = 10


def fill(store: Store, n_templates: int, rng: np.random.Generator) -> None:
    """Bulk-insert ``n_templates`` random unit vectors, ``PER_PERSON`` per person."""
    now = time.time()
    with store.engine.begin() as conn:
        # the migration creates the default collection
        coll = conn.execute(select(CollectionRow.id).where(CollectionRow.name == DEFAULT_COLLECTION)).scalar_one()
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


def median_ms(fn, queries: np.ndarray) -> float:
    """Median time of ``fn(query)`` over single queries, in ms (after one warm-up call)."""
    fn(queries[0])
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def hnsw_row(matrix: np.ndarray, queries: np.ndarray) -> str:
    """faiss HNSW (M=32, efSearch 128) against the exact answer: build time, search time, recall@1."""
    import faiss

    faiss.omp_set_num_threads(2)
    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(matrix)
    build_s = time.perf_counter() - t
    index.hnsw.efSearch = 128
    exact = (queries @ matrix.T).argmax(axis=1)
    found = index.search(queries, 1)[1][:, 0]
    ms = median_ms(lambda q: index.search(q[None], 1), queries)
    return f"hnsw_build_s={build_s:.1f} hnsw_search_ms={ms:.3f} hnsw_recall_at_1={np.mean(found == exact):.3f}"


def measure(size: int, args: argparse.Namespace, rng: np.random.Generator) -> tuple[float, float]:
    """Fill a fresh database with ``size`` templates; print and return (load s, search ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        store = Store(engine)
        t = time.perf_counter()
        fill(store, size, rng)
        fill_s = time.perf_counter() - t
        loads = []
        for _ in range(3):
            gallery = None  # let the previous index go before timing the next load
            t = time.perf_counter()
            gallery = build_gallery(store.index_rows(MODEL), MODEL)
            loads.append(time.perf_counter() - t)
        gallery = None
        # what a running server does after a write: the live index reloads only who changed
        live = LiveIndex(store, MODEL)
        new = rng.normal(size=(PER_PERSON, DIM)).astype(np.float32)
        store.enroll("one more", [NewTemplate(v / np.linalg.norm(v)) for v in new], model_id=MODEL)
        t = time.perf_counter()
        assert live.refresh()
        reload_s = time.perf_counter() - t
        gallery = live.gallery
        engine.dispose()
    assert gallery.template_count == size + PER_PERSON
    matrix = gallery._rows.matrix
    # half the queries are near an enrolled template (a known face), half are strangers
    half = args.queries // 2
    near = matrix[rng.integers(0, size, half)] + rng.normal(scale=0.03, size=(half, DIM))
    queries = np.concatenate([near, rng.normal(size=(args.queries - half, DIM))]).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    policy = DecisionPolicy.for_model(MODEL)
    search_ms = median_ms(lambda q: [policy.decide(c) for c in gallery.search(q[None])], queries)
    scan_ms = median_ms(lambda q: similarities(q[None], matrix).argmax(), queries)
    load_s = statistics.median(loads)
    print(
        f"templates={size:>9,} write_s={fill_s:6.1f} load_s={load_s:6.2f} reload_after_write_s={reload_s:5.2f} "
        f"search_ms={search_ms:7.2f} "
        f"float32_scan_ms={scan_ms:7.2f} speedup={scan_ms / search_ms:4.1f}x",
        flush=True,
    )
    if args.hnsw:
        print(f"templates={size:>9,} {hnsw_row(matrix, queries)}", flush=True)
    return load_s, search_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--hnsw", action="store_true", help="also measure faiss HNSW (pip install faiss-cpu)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    results = {size: measure(size, args, rng) for size in [int(s) for s in args.sizes.split(",")]}
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
