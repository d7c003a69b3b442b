"""The one check of embeddings, shared by the gallery, the store and archive import."""

from __future__ import annotations

import numpy as np

from facegate.core.errors import EmbeddingError


def unit_embeddings(embeddings: np.ndarray, dim: int) -> np.ndarray:
    """Embeddings (N, dim) or (dim,) as unit-length float32 rows (N, dim).

    Raises ``EmbeddingError``: ``bad_embedding_dim`` for another shape, ``bad_embedding``
    for NaN, infinity or a zero vector.
    """
    arr = np.asarray(embeddings, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise EmbeddingError(f"embeddings must have shape (N, {dim}); got {arr.shape}", code="bad_embedding_dim")
    if not np.all(np.isfinite(arr)):
        raise EmbeddingError("embeddings contain NaN or infinity", code="bad_embedding")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if np.any(norms < 1e-6):
        raise EmbeddingError("an embedding has zero length", code="bad_embedding")
    return arr / norms
