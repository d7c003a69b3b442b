"""FaceEngine: typed faces with every stage's output, batch and single calls agree."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import GROUP, GROUP_FACES, LFW, NO_FACE
from facegate.vision.engine import EngineConfig, FaceEngine
from facegate.vision.errors import FacegateError, ImageError
from facegate.vision.types import Box, Face, Quality

PHOTO = LFW / "Hugo_Chavez" / "Hugo_Chavez_0001.jpg"


def test_analyze_returns_complete_typed_faces(engine):
    faces = engine.analyze(GROUP)
    assert len(faces) == GROUP_FACES
    areas = [f.box.area for f in faces]
    assert areas == sorted(areas, reverse=True)  # largest first
    for face in faces:
        assert isinstance(face, Face) and isinstance(face.box, Box) and isinstance(face.quality, Quality)
        assert face.landmarks.shape == (5, 2)
        # the landmarks lie inside (or at the edge of) the face box
        assert np.all(face.landmarks[:, 0] > face.box.x1 - 10) and np.all(face.landmarks[:, 0] < face.box.x2 + 10)
        assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= face.quality.score <= 1.0


def test_no_face_gives_empty_list(engine):
    assert engine.analyze(NO_FACE) == []


def test_max_faces_keeps_the_largest(engine):
    everyone = engine.analyze(GROUP)
    two = engine.analyze(GROUP, max_faces=2)
    assert [f.box for f in two] == [f.box for f in everyone[:2]]


def test_batch_equals_single_calls(engine):
    paths = [GROUP, PHOTO, NO_FACE]
    batch = engine.analyze_batch(paths)
    assert [len(faces) for faces in batch] == [GROUP_FACES, 1, 0]
    single = engine.analyze(PHOTO)
    assert float(batch[1][0].embedding @ single[0].embedding) > 0.99999


def test_quality_reasons_name_what_is_wrong(engine):
    import cv2

    from facegate.vision.image import load_image

    sharp = engine.analyze(PHOTO)[0].quality
    blurred = engine.analyze(cv2.GaussianBlur(load_image(PHOTO), (0, 0), 4))[0].quality
    dark = engine.analyze((load_image(PHOTO) * 0.12).astype(np.uint8))[0].quality
    assert "blurry" in blurred.reasons and blurred.score < sharp.score
    assert "too_dark" in dark.reasons and dark.score < sharp.score
    assert sharp.score > 0.5


def test_dlib_embedder_fallback_agrees(engine):
    fallback = FaceEngine(EngineConfig(embedder="dlib"))
    a = engine.analyze(PHOTO)[0].embedding
    b = fallback.analyze(PHOTO)[0].embedding
    assert float(a @ b) > 0.99999


def test_flip_descriptor_differs_but_stays_close(engine):
    flipped = FaceEngine(EngineConfig(flip=True)).analyze(PHOTO)[0].embedding
    plain = engine.analyze(PHOTO)[0].embedding
    assert 0.97 < float(plain @ flipped) < 0.99999


def test_bad_input_raises_typed_error(engine):
    with pytest.raises(ImageError) as err:
        engine.analyze(b"not an image")
    assert err.value.code == "image_unsupported_type"


def test_bad_config_is_refused():
    with pytest.raises(FacegateError) as err:
        EngineConfig(detector="haar")
    assert err.value.code == "bad_config"


def test_import_loads_no_model():
    import subprocess
    import sys

    code = (
        "import sys, facegate, facegate.vision.engine, facegate.gallery.index;"
        "heavy = {'dlib', 'onnxruntime', 'ai_edge_litert', 'onnx', 'cv2'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
