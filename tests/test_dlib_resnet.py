"""The dlib ResNet rebuilt as ONNX gives dlib's own descriptors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from conftest import CHIPS, ENROLLED, photos
from facegate.vision.dlib_resnet import converted_onnx_path, parse_dlib_network
from facegate.vision.embedding import RESNET_FILE, DlibEmbedder, OnnxDlibEmbedder
from facegate.vision.errors import ModelFormatError
from facegate.vision.image import load_image
from facegate.vision.models import dlib_model_path


@pytest.fixture(scope="module")
def real_chips(engine) -> np.ndarray:
    """Aligned chips: dlib's own example chips plus chips cut from the LFW test photos."""
    chips = [load_image(p) for p in sorted(CHIPS.glob("*/*.jpg"))]
    for person in ENROLLED:
        for path in photos(person)[:2]:
            face = engine.analyze(path, max_faces=1, embed=False, keep_chips=True)[0]
            chips.append(face.chip)
    return np.stack(chips)


def test_parser_reads_the_whole_network():
    net = parse_dlib_network(dlib_model_path(RESNET_FILE).read_bytes())
    kinds = Counter(type(layer).__name__ for layer in net.layers)
    assert kinds == {"Conv": 29, "Affine": 29, "Relu": 29, "Tag": 22, "AddPrev": 14, "Pool": 6, "Dense": 1}
    assert net.input_size == (150, 150)
    assert net.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-3)


def test_onnx_descriptor_equals_dlibs_own(real_chips):
    ours = OnnxDlibEmbedder().embed_raw(real_chips)
    reference = DlibEmbedder().embed_raw(real_chips)
    cosine = np.sum(ours * reference, axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    assert len(real_chips) >= 14
    assert cosine.min() >= 0.99999
    assert np.abs(ours - reference).max() < 1e-4
    # the raw descriptor is dlib's, not normalised (its norm is about 1.4)
    assert 1.0 < float(np.linalg.norm(ours, axis=1).mean()) < 2.0


def test_conversion_is_cached_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGATE_CACHE_DIR", str(tmp_path))
    first = converted_onnx_path(dlib_model_path(RESNET_FILE))
    stamp = first.stat().st_mtime_ns
    second = converted_onnx_path(dlib_model_path(RESNET_FILE))
    assert first == second and second.stat().st_mtime_ns == stamp
    assert first.parent == tmp_path and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("cut", [0, 100, 5000, 22_000_000])
def test_damaged_model_file_raises_model_format_error(cut):
    data = dlib_model_path(RESNET_FILE).read_bytes()
    with pytest.raises(ModelFormatError):
        parse_dlib_network(data[:cut] if cut else b"\x05garbage" + data[10:])
