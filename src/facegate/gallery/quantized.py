"""An int8 copy of the template matrix that narrows an exact search to a few candidates.

Exact search reads every float32 template (51 MB at 100k): it is bound by memory
bandwidth. This prefilter keeps the templates as int8 (a quarter of the bytes) inside an
onnxruntime ``MatMulInteger`` + ``TopK`` graph, whose kernels use the CPU's integer dot
product instructions, and then re-scores the best ``K`` candidates in float32.

The result is the exact one, not an approximation: quantisation moves any similarity by at
most ``bound`` (computed from the scales, see :meth:`QuantizedMatrix.error_bound`), so every
template outside the ``K`` candidates scores at most ``kth_approx + bound`` exactly. When
that cannot beat the candidates' answer the search is proven exact; otherwise the caller
falls back to the full float32 product for that query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# rounding of the float32 re-scoring and of the scale arithmetic, on top of the bound
_SLACK = 1e-5
_CHUNK = 65_536  # rows quantised at a time


def _external_tensor(name: str, data_type: int, array: np.ndarray):
    """An initializer that only names its type and shape; its data is handed to the session apart."""
    from onnx import TensorProto

    tensor = TensorProto(name=name, data_type=data_type, dims=list(array.shape))
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", f"facegate-{name}"), ("offset", "0"), ("length", str(array.nbytes))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


@dataclass(frozen=True)
class Shortlist:
    """The ``K`` best templates of each query by int8 score, and what the others can reach."""

    indices: np.ndarray  # (M, K) template rows, best approximate score first
    ceiling: np.ndarray  # (M,) highest exact similarity any template outside ``indices`` can have


class QuantizedMatrix:
    """Unit-length templates (T, D) as int8, searched by onnxruntime; see the module docstring."""

    def __init__(self, matrix: np.ndarray, candidates: int = 64, num_threads: int = 2) -> None:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        matrix = np.asarray(matrix, np.float32)
        self.rows, self.dim = matrix.shape
        self.candidates = min(candidates, self.rows)
        chunks = [matrix[i : i + _CHUNK] for i in range(0, self.rows, _CHUNK)]  # no matrix-sized temporaries
        peak = max((max(float(c.max()), -float(c.min())) for c in chunks), default=0.0) or 1.0
        self.scale = 127.0 / peak
        templates = np.empty((self.dim, self.rows), np.int8)  # transposed, as MatMulInteger wants them
        max_l1 = 0
        for i, chunk in zip(range(0, self.rows, _CHUNK), chunks, strict=True):
            quantized = np.rint(chunk * self.scale).astype(np.int8)
            templates[:, i : i + len(chunk)] = quantized.T
            max_l1 = max(max_l1, int(np.abs(quantized, dtype=np.int16).sum(axis=1).max()))
        # the largest L1 norm of a dequantised row: how far a query's rounding can move a score
        self.max_row_l1 = max_l1 / self.scale
        graph = helper.make_graph(
            [
                helper.make_node("MatMulInteger", ["query", "templates", "query_zero"], ["scores"]),
                helper.make_node("TopK", ["scores", "k"], ["top_scores", "top_rows"], axis=1),
            ],
            "quantized_search",
            [helper.make_tensor_value_info("query", TensorProto.UINT8, ["M", self.dim])],
            [
                helper.make_tensor_value_info("top_scores", TensorProto.INT32, ["M", self.candidates]),
                helper.make_tensor_value_info("top_rows", TensorProto.INT64, ["M", self.candidates]),
            ],
            [
                _external_tensor("templates", TensorProto.INT8, templates),
                numpy_helper.from_array(np.array(128, np.uint8), "query_zero"),
                numpy_helper.from_array(np.array([self.candidates], np.int64), "k"),
            ],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        # as in the embedder: workers park when a run returns instead of spinning on a core
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        # the int8 templates reach the session as an external initializer: copied once into it,
        # not three times through protobuf (most of the build time, for a large gallery)
        options.add_external_initializers(["templates"], [ort.OrtValue.ortvalue_from_numpy(templates)])
        self._session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def error_bound(self, query_scales: np.ndarray, query_l1: np.ndarray) -> np.ndarray:
        """Per query, the most quantisation can move any similarity.

        ``q.x - q'.x' = q.(x - x') + (q - q').x'`` where ``'`` marks the rounded vectors:
        each coordinate is off by at most half a step, so the error is at most
        ``|q|_1 / (2 s) + |x'|_1 / (2 s_q)``.
        """
        return query_l1 * 0.5 / self.scale + self.max_row_l1 * 0.5 / query_scales + _SLACK

    def shortlist(self, queries: np.ndarray) -> Shortlist:
        """The ``K`` best rows per unit-length query (M, D) by int8 score."""
        peaks = np.abs(queries).max(axis=1)
        query_scales = 127.0 / np.maximum(peaks, 1e-12)
        quantized = (np.round(queries * query_scales[:, None]) + 128).astype(np.uint8)
        top_scores, top_rows = self._session.run(None, {"query": quantized})
        kth = top_scores[:, -1].astype(np.float64) / (self.scale * query_scales)
        if self.candidates == self.rows:  # every row is a candidate: nothing is outside
            ceiling = np.full(len(queries), -np.inf)
        else:
            ceiling = kth + self.error_bound(query_scales, np.abs(queries).sum(axis=1))
        return Shortlist(top_rows, ceiling)
