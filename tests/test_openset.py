"""Open-set decisions: a bar that follows the gallery, a margin, quality reasons, P(correct) confidence.

The rates themselves (FPIR held at the target for N = 10 to 1000, TPIR, ECE) are measured by
``bench/openset.py`` on LFW; these tests pin the behaviour on real faces from tests/data and
on the policy's own model.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from conftest import ENROLLED, STRANGER, identify, photos
from facegate.config import load_settings
from facegate.core.errors import FacegateError
from facegate.gallery.decision import Candidate, DecisionPolicy, below_floor
from facegate.gallery.index import Gallery
from facegate.gallery.openset import GalleryShape, per_template_rate, quality_class
from facegate.vision.types import Quality

POLICY = DecisionPolicy.for_model("dlib_resnet_v1")
GOOD = Quality(1.0, (), 120.0, 50.0, 120.0, 0.0, 0.0, 0.0, 30.0, 1.1)


def test_the_bar_rises_with_the_gallery_and_the_templates_per_person():
    bars = [POLICY.match_threshold(GalleryShape(n, 1.0)) for n in (10, 100, 1000, 10_000)]
    assert bars == sorted(bars) and bars[0] < bars[-1]
    assert POLICY.match_threshold(GalleryShape(100, 3.0)) > POLICY.match_threshold(GalleryShape(100, 1.0))
    strict = replace(POLICY, fpir=0.001)
    lenient = replace(POLICY, fpir=0.05)
    shape = GalleryShape(100, 2.0)
    assert strict.match_threshold(shape) > POLICY.match_threshold(shape) > lenient.match_threshold(shape)


def test_the_same_similarity_names_someone_in_a_small_gallery_but_not_in_a_large_one():
    shape_small, shape_large = GalleryShape(10, 1.0), GalleryShape(1000, 1.0)
    similarity = (POLICY.match_threshold(shape_small) + POLICY.match_threshold(shape_large)) / 2
    candidates = [Candidate("p1", "A", similarity), Candidate("p2", "B", 0.80)]
    assert POLICY.decide(candidates, shape=shape_small, quality=GOOD).is_match
    large = POLICY.decide(candidates, shape=shape_large, quality=GOOD)
    assert not large.is_match and large.reason == "no_match"


def test_per_stranger_rate_from_the_per_pair_rate():
    """(1 - (1 - FPIR)^(1/N)) / T per comparison: a stranger compared with N x T templates passes with FPIR."""
    for n, t in ((10, 1), (100, 3), (1000, 2)):
        p = per_template_rate(0.01, n, t)
        assert 1 - (1 - p * t) ** n == pytest.approx(0.01, rel=1e-6)
    # the policy's bar is -log10 of that rate, corrected by the fitted offset (a fraction of a decade)
    from facegate.gallery.openset_fit import OPEN_SET

    independent = -math.log10(per_template_rate(0.01, 100, 1))
    assert abs(OPEN_SET.bar(0.01, GalleryShape(100, 1.0)) - independent) < 0.7


def test_a_runner_up_too_close_in_a_large_gallery_is_low_margin():
    shape = GalleryShape(1000, 3.0)
    needed = POLICY.match_threshold(shape)
    alone = POLICY.decide([Candidate("p1", "A", needed + 0.004), Candidate("p2", "B", 0.85)], shape=shape, quality=GOOD)
    assert alone.is_match
    close = POLICY.decide(
        [Candidate("p1", "A", needed + 0.004), Candidate("p2", "B", needed + 0.003)], shape=shape, quality=GOOD
    )
    assert not close.is_match and close.reason == "low_margin"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"size": 24.0}, "too_small"),
        ({"sharpness": 2.0}, "blurry"),
        ({"yaw": 62.0}, "turned"),
        ({"brightness": 12.0}, "too_dark"),
    ],
)
def test_a_face_below_a_quality_floor_is_unknown_with_the_reason(change, reason):
    quality = replace(GOOD, **change)
    assert below_floor(quality) == reason
    decision = POLICY.decide([Candidate("p1", "A", 0.99)], shape=GalleryShape(5, 1.0), quality=quality)
    assert decision.status == "unknown" and decision.reason == reason and decision.person_id is None


def test_a_poor_face_needs_more_similarity_and_says_why():
    blurred = replace(GOOD, sharpness=8.0)
    grey = replace(GOOD, colour=0.5)
    assert quality_class(blurred) == "blurry" and quality_class(grey) == "greyscale" and quality_class(GOOD) == "ok"
    shape = GalleryShape(50, 2.0)
    just_enough = POLICY.match_threshold(shape) + 0.0005
    candidates = [Candidate("p1", "A", just_enough), Candidate("p2", "B", 0.80)]
    assert POLICY.decide(candidates, shape=shape, quality=GOOD).is_match
    decision = POLICY.decide(candidates, shape=shape, quality=blurred)
    assert decision.status == "unknown" and decision.reason == "blurry"
    assert decision.threshold > POLICY.decide(candidates, shape=shape, quality=GOOD).threshold


def test_confidence_is_a_probability_that_grows_with_the_evidence_and_is_amber_near_the_bar():
    shape = GalleryShape(100, 2.0)
    needed = POLICY.match_threshold(shape)
    confidences = [
        POLICY.decide([Candidate("p1", "A", s), Candidate("p2", "B", 0.85)], shape=shape, quality=GOOD).confidence
        for s in np.linspace(needed - 0.03, needed + 0.03, 13)
    ]
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert confidences == sorted(confidences) and confidences[0] < 0.2 and confidences[-1] > 0.95
    at_bar = POLICY.decide([Candidate("p1", "A", needed + 1e-4), Candidate("p2", "B", 0.85)], shape=shape)
    assert at_bar.is_match and 0.5 < at_bar.confidence < 0.95  # a bare match is not shown as a sure one


def test_presets_and_target_fpir_are_settings():
    assert load_settings(environ={}).decision.decision_preset == "balanced"
    settings = load_settings(environ={"FACEGATE_DECISION_PRESET": "strict"})
    assert settings.decision.decision_preset == "strict"
    assert load_settings(environ={"FACEGATE_TARGET_FPIR": "0.002"}).decision.target_fpir == 0.002
    assert DecisionPolicy.for_model("dlib_resnet_v1", preset="strict").fpir == 0.001
    assert DecisionPolicy.for_model("dlib_resnet_v1", preset="strict", fpir=0.02).fpir == 0.02
    for bad in ({"FACEGATE_DECISION_PRESET": "paranoid"}, {"FACEGATE_TARGET_FPIR": "0.9"}):
        with pytest.raises(FacegateError) as err:
            load_settings(environ=bad)
        assert err.value.code == "bad_config"


def test_a_fixed_threshold_replaces_the_open_set_decision():
    fixed = DecisionPolicy.for_model("dlib_resnet_v1", 0.93)
    assert not fixed.open_set and fixed.match_threshold(GalleryShape(1000, 3.0)) == 0.93
    decision = fixed.decide([Candidate("p1", "A", 0.931), Candidate("p2", "B", 0.9305)], shape=GalleryShape(1000, 3.0))
    assert decision.is_match  # no margin, no gallery size: the configured similarity alone


@pytest.fixture(scope="module")
def gallery(engine) -> Gallery:
    """The four test people from three photos each, templates flip-averaged as enrolment makes them."""
    from facegate.vision.engine import EngineConfig, FaceEngine

    enrol = FaceEngine(EngineConfig(flip_templates=True))
    g = Gallery(engine.model_id)
    for name in ENROLLED:
        person = g.add_person(name)
        faces = [enrol.analyze(p, max_faces=1)[0] for p in photos(name)[:3]]
        g.add_templates(person.id, np.stack([f.embedding for f in faces]), qualities=[f.quality.score for f in faces])
    return g


def test_real_faces_enrolled_are_named_and_the_stranger_is_not(engine, gallery):
    for name in ENROLLED:
        face = engine.analyze(photos(name)[3], max_faces=1)[0]
        decision = identify(gallery, face.embedding[None], qualities=[face.quality])[0]
        assert decision.is_match and decision.name == name, (name, decision)
        assert decision.confidence > 0.5
    stranger = engine.analyze(STRANGER, max_faces=1)[0]
    decision = identify(gallery, stranger.embedding[None], qualities=[stranger.quality])[0]
    assert decision.status == "unknown" and decision.reason == "no_match"


def test_a_real_face_shrunk_below_the_floor_is_unknown_too_small(engine, gallery):
    import cv2

    image = engine.load(photos(ENROLLED[0])[3])
    small = cv2.resize(image, (image.shape[1] // 5, image.shape[0] // 5), interpolation=cv2.INTER_AREA)
    faces = engine.analyze(small, max_faces=1)
    assert faces, "the detector still finds the small face"
    decision = identify(gallery, faces[0].embedding[None], qualities=[faces[0].quality])[0]
    assert decision.status == "unknown" and decision.reason == "too_small"


def test_a_templates_quality_class_is_stored_and_weighs_in_the_search(database_url):
    """A blurred face against a blurred template loses the pair's measured shift; against a good one, less."""
    from facegate.gallery.openset_fit import OPEN_SET
    from facegate.service.indexes import build_gallery
    from facegate.store.db import make_engine, upgrade
    from facegate.store.repository import NewTemplate, Store

    engine = make_engine(database_url)
    upgrade(engine)
    store = Store(engine)
    rng = np.random.default_rng(3)
    a, b = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 128)))
    store.create_person("Blurred", [NewTemplate(a, 0.2, "a.jpg", quality_class="blurry")], model_id="m")
    store.create_person("Sharp", [NewTemplate(b, 1.0, "b.jpg")], model_id="m")
    rows = store.index_rows("m")
    assert sorted(rows.classes) == ["blurry", "ok"]
    gallery = build_gallery(rows, "m")
    shifts = OPEN_SET.pair_shift
    assert shifts["blurry"]["blurry"] > shifts["blurry"]["ok"] >= 0.0
    found = gallery.search(np.stack([a, b]), top_k=2, probe_classes=["blurry", "blurry"], pair_shift=shifts)
    assert found[0][0].name == "Blurred" and found[0][0].shift == pytest.approx(shifts["blurry"]["blurry"])
    assert found[0][0].similarity == pytest.approx(1.0, abs=1e-5)  # the raw similarity, shift reported apart
    assert found[1][0].name == "Sharp" and found[1][0].shift == pytest.approx(shifts["blurry"]["ok"])
    engine.dispose()


def test_the_curve_reads_the_same_for_one_similarity_and_for_an_array():
    """Decisions read the curve one value at a time (``at``), the benches a whole array (``__call__``)."""
    from facegate.gallery.openset_fit import OPEN_SET

    curve = OPEN_SET.curve
    similarities = np.linspace(0.5, 1.0, 5001)
    assert np.allclose([curve.at(float(s)) for s in similarities], curve(similarities), atol=1e-9)
    for evidence in (0.0, 1.3, 3.0, 4.75, 6.5):
        assert curve.at(curve.similarity_at(evidence)) == pytest.approx(evidence, abs=1e-6)
