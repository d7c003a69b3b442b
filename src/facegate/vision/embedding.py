"""Face embedders: dlib's ResNet run by onnxruntime (default) or by dlib itself (fallback).

Both take aligned 150x150 RGB chips and return L2-normalised 128-d float32 descriptors.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol, runtime_checkable

import numpy as np

from facegate.core.providers import session_providers
from facegate.vision.dlib_resnet import converted_onnx_path
from facegate.vision.models import dlib_model_path, require_module

RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
MODEL_ID = "dlib_resnet_v1"

log = logging.getLogger(__name__)


@runtime_checkable
class FaceEmbedder(Protocol):
    """Turns aligned chips (N, 150, 150, 3) uint8 RGB into descriptors (N, 128) float32."""

    name: str
    model_id: str
    dim: int

    def embed_raw(self, chips: np.ndarray) -> np.ndarray: ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def embed(embedder: FaceEmbedder, chips: np.ndarray, flip: bool = False) -> np.ndarray:
    """Unit-length descriptors; with ``flip`` each is the mean of the chip and its mirror."""
    if len(chips) == 0:
        return np.zeros((0, embedder.dim), np.float32)
    if not flip:
        return l2_normalize(embedder.embed_raw(chips))
    both = embedder.embed_raw(np.concatenate([chips, chips[:, :, ::-1]]))
    n = len(chips)
    return l2_normalize(both[:n] + both[n:])


class OnnxDlibEmbedder:
    """dlib's ResNet rebuilt as ONNX (converted once, cached) and run by onnxruntime.

    ``execution_provider`` (core/providers.py) picks onnxruntime's providers: one the installed
    onnxruntime lacks raises :class:`~facegate.core.providers.ProviderUnavailable`; ``providers``
    are those the session really runs on (onnxruntime falls back to the CPU, with a warning, when
    a GPU provider cannot start).
    """

    name = "onnx"
    model_id = MODEL_ID
    dim = 128

    def __init__(self, num_threads: int = 2, execution_provider: str = "cpu") -> None:
        ort = require_module("onnxruntime")
        providers = session_providers(execution_provider, ort.get_available_providers())
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Workers spin during a run (each conv is a short parallel section) but park as soon
        # as it returns: otherwise they keep a core busy while the detector and dlib run,
        # which measured +2.5 ms on the detector per frame (bench/speed.py's pipeline).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        path = converted_onnx_path(dlib_model_path(RESNET_FILE))
        self._session = ort.InferenceSession(str(path), options, providers=providers)
        self.providers: tuple[str, ...] = tuple(self._session.get_providers())
        if self.providers[0] != providers[0]:
            log.warning(
                "execution_provider %r: onnxruntime could not start %s (see its message above); "
                "the embedder runs on %s",
                execution_provider,
                providers[0],
                ", ".join(self.providers),
            )

    def embed_raw(self, chips: np.ndarray) -> np.ndarray:
        """dlib's raw (unnormalised) descriptors for a batch of chips."""
        chips = np.ascontiguousarray(chips, dtype=np.uint8)
        return self._session.run(None, {"chips": chips})[0]


class DlibEmbedder:
    """dlib's own ``compute_face_descriptor`` (no BLAS in dlib-bin: ~60 ms per face)."""

    name = "dlib"
    model_id = MODEL_ID
    dim = 128

    def __init__(self) -> None:
        dlib = require_module("dlib")
        self._model = dlib.face_recognition_model_v1(str(dlib_model_path(RESNET_FILE)))
        self._lock = threading.Lock()

    def embed_raw(self, chips: np.ndarray) -> np.ndarray:
        """dlib's raw descriptors for a batch of chips."""
        with self._lock:
            rows = [np.asarray(self._model.compute_face_descriptor(np.ascontiguousarray(c))) for c in chips]
        return np.array(rows, dtype=np.float32).reshape(len(chips), self.dim)
