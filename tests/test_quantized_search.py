"""Large galleries shortlist by an int8 copy: the answers must equal the full float32 search."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.gallery import index as index_module
from facegate.gallery.index import Gallery, Person, Template
from facegate.gallery.quantized import QuantizedMatrix

ROWS = 30_000  # above QUANTIZED_MIN_TEMPLATES


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_gallery(matrix: np.ndarray, per_person: int) -> Gallery:
    people = [Person(f"p{i}", f"person {i}") for i in range(len(matrix) // per_person)]
    g = Gallery("test")
    g.restore(people, [Template(f"t{i}", f"p{i // per_person}", matrix[i]) for i in range(len(matrix))])
    g.prepare_search()
    return g


def brute_force(matrix: np.ndarray, per_person: int, query: np.ndarray, top_k: int) -> list[tuple[str, float]]:
    sims = matrix @ query
    best: dict[str, float] = {}
    for row in np.argsort(-sims, kind="stable"):
        best.setdefault(f"p{row // per_person}", float(sims[row]))
        if len(best) == top_k:
            break
    return list(best.items())


def assert_exact(g: Gallery, matrix: np.ndarray, per_person: int, queries: np.ndarray, top_k: int) -> None:
    for query, found in zip(queries, g.search(queries, top_k=top_k), strict=True):
        expected = brute_force(matrix, per_person, query, top_k)
        assert [c.person_id for c in found] == [pid for pid, _ in expected]
        np.testing.assert_allclose([c.similarity for c in found], [s for _, s in expected], atol=1e-5)


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(7)


def test_large_gallery_uses_the_prefilter(rng):
    g = make_gallery(unit(rng.normal(size=(ROWS, 128))), per_person=10)
    assert ROWS >= index_module.QUANTIZED_MIN_TEMPLATES
    assert isinstance(g._prefilter(), QuantizedMatrix)
    small = make_gallery(unit(rng.normal(size=(100, 128))), per_person=10)
    assert small._prefilter() is None


@pytest.mark.parametrize("top_k", [1, 3])
def test_random_gallery_results_are_exact(rng, top_k):
    matrix = unit(rng.normal(size=(ROWS, 128)))
    g = make_gallery(matrix, per_person=10)
    near = unit(matrix[rng.integers(0, ROWS, 40)] + 0.05 * rng.normal(size=(40, 128)))  # enrolled people
    far = unit(rng.normal(size=(40, 128)))  # strangers
    assert_exact(g, matrix, 10, np.concatenate([near, far]), top_k)


def test_clustered_gallery_falls_back_and_stays_exact(rng, monkeypatch):
    """100 near-identical templates per person: the 64 shortlisted rows cannot prove the answer."""
    centres = unit(rng.normal(size=(ROWS // 100, 128)))
    matrix = unit(np.repeat(centres, 100, axis=0) + 0.01 * rng.normal(size=(ROWS, 128)))
    g = make_gallery(matrix, per_person=100)
    full_scans = []
    original = index_module.similarities
    monkeypatch.setattr(index_module, "similarities", lambda q, m: full_scans.append(len(m)) or original(q, m))
    queries = unit(matrix[rng.integers(0, ROWS, 10)] + 0.02 * rng.normal(size=(10, 128)))
    assert_exact(g, matrix, 100, queries, top_k=2)
    assert full_scans, "the shortlist should not have been able to prove these answers"


def test_error_bound_holds(rng):
    """No quantised similarity is further from the float32 one than the bound says."""
    matrix = unit(rng.normal(size=(2_000, 128)))
    quantized = QuantizedMatrix(matrix)
    queries = unit(rng.normal(size=(20, 128)))
    q_scales = 127.0 / np.abs(queries).max(axis=1)
    approx = (np.round(queries * q_scales[:, None]) @ np.round(matrix * quantized.scale).T) / (
        quantized.scale * q_scales[:, None]
    )
    error = np.abs(approx - queries @ matrix.T).max(axis=1)
    assert np.all(error <= quantized.error_bound(q_scales, np.abs(queries).sum(axis=1)))
