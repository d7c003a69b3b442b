"""Gallery: enrol people from photos, identify them from other photos, say unknown otherwise."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import ENROLLED, GROUP, STRANGER, identify, photos
from facegate.config import load_settings
from facegate.core.errors import FacegateError
from facegate.gallery.decision import CALIBRATIONS, MATCH_THRESHOLD, DecisionPolicy
from facegate.gallery.index import Gallery


@pytest.fixture(scope="module")
def gallery(engine) -> Gallery:
    """Each test person enrolled from their first three photos (the fourth is the probe)."""
    g = Gallery(engine.model_id)
    for name in ENROLLED:
        person = g.add_person(name)
        faces = [engine.analyze(p, max_faces=1)[0] for p in photos(name)[:3]]
        g.add_templates(person.id, np.stack([f.embedding for f in faces]), qualities=[f.quality.score for f in faces])
    return g


def probe(engine, path) -> np.ndarray:
    return engine.analyze(path, max_faces=1)[0].embedding[None]


@pytest.mark.parametrize("name", ENROLLED)
def test_enrolled_people_are_recognised_from_other_photos(engine, gallery, name):
    decision = identify(gallery, probe(engine, photos(name)[3]))[0]
    assert decision.status == "match"
    assert decision.name == name
    assert decision.similarity >= MATCH_THRESHOLD
    assert 0.5 < decision.confidence <= 1.0


def test_stranger_is_unknown(engine, gallery):
    decision = identify(gallery, probe(engine, STRANGER), top_k=3)[0]
    assert decision.status == "unknown"
    assert decision.person_id is None and decision.name is None
    assert decision.confidence < 0.5
    assert len(decision.candidates) == 3  # top-k still lists who was closest


def test_group_of_strangers_are_all_unknown(engine, gallery):
    faces = engine.analyze(GROUP)
    decisions = identify(gallery, np.stack([f.embedding for f in faces]))
    assert len(decisions) == 6 and all(d.status == "unknown" for d in decisions)


def test_exif_rotated_photo_is_recognised(engine, gallery):
    upright = Image.open(photos("Tony_Blair")[3]).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; the viewer rotates it back
    buf = io.BytesIO()
    upright.rotate(90, expand=True).save(buf, "JPEG", exif=exif, quality=95)
    decision = identify(gallery, probe(engine, buf.getvalue()))[0]
    assert decision.status == "match" and decision.name == "Tony_Blair"


def test_top_k_lists_distinct_people_best_first(engine, gallery):
    decision = identify(gallery, probe(engine, photos("Colin_Powell")[3]), top_k=4)[0]
    names = [c.name for c in decision.candidates]
    assert names[0] == "Colin_Powell" and len(set(names)) == 4
    sims = [c.similarity for c in decision.candidates]
    assert sims == sorted(sims, reverse=True)


def test_threshold_is_configurable(engine, gallery):
    strict = DecisionPolicy.for_model(gallery.model_id, 0.999)
    query = probe(engine, photos("Hugo_Chavez")[3])
    assert identify(gallery, query)[0].status == "match"
    assert identify(gallery, query, policy=strict)[0].status == "unknown"


def test_rename_remove_and_errors(engine):
    g = Gallery(engine.model_id)
    a = g.add_person("Alice")
    g.add_templates(a.id, np.eye(128, dtype=np.float32)[:2])
    with pytest.raises(FacegateError) as err:
        g.add_person("Alice")
    assert err.value.code == "duplicate_name"
    with pytest.raises(FacegateError) as err:
        g.add_templates(a.id, np.ones((1, 64), np.float32))
    assert err.value.code == "bad_embedding_dim"
    with pytest.raises(FacegateError) as err:
        g.add_templates(a.id, np.full((1, 128), np.nan, np.float32))
    assert err.value.code == "bad_embedding"
    with pytest.raises(FacegateError) as err:
        g.get("p_missing")
    assert err.value.code == "person_not_found"
    assert g.template_count == 2  # the refused writes changed nothing
    g.rename(a.id, "Alicia")
    assert g.find_by_name("Alicia").id == a.id and g.find_by_name("Alice") is None
    t = g.templates_of(a.id)[0]
    g.remove_template(t.id)
    assert g.template_count == 1
    assert g.remove_person(a.id) == 1
    assert len(g) == 0 and g.template_count == 0
    assert identify(g, np.ones((1, 128), np.float32))[0].status == "unknown"


def test_threshold_from_settings_and_calibration_per_model():
    assert load_settings(environ={"FACEGATE_MATCH_THRESHOLD": "0.95"}).engine.match_threshold == 0.95
    with pytest.raises(FacegateError) as err:
        load_settings(environ={"FACEGATE_MATCH_THRESHOLD": "high"})
    assert err.value.code == "bad_config"
    with pytest.raises(FacegateError) as err:
        load_settings(environ={"FACEGATE_MATCH_THRESHOLD": "1.5"})
    assert err.value.code == "bad_config"
    assert DecisionPolicy.for_model("dlib_resnet_v1").threshold == MATCH_THRESHOLD
    assert DecisionPolicy.for_model("dlib_resnet_v1", 0.9).threshold == 0.9  # a configured value wins
    flip = DecisionPolicy.for_model("dlib_resnet_v1+flip")
    assert flip.threshold == CALIBRATIONS["flip"].threshold and flip.calibration == CALIBRATIONS["flip"]


def test_one_confidence_for_one_similarity_with_a_fixed_threshold():
    """With a fixed threshold (configured, or the flip model's), decide and verify agree on a similarity.

    (The default open-set decision's confidence is P(correct name) in the gallery: tests/test_openset.py.)
    """
    from facegate.gallery.decision import Candidate

    for policy in (DecisionPolicy.for_model("dlib_resnet_v1", 0.9266), DecisionPolicy.for_model("dlib_resnet_v1+flip")):
        assert not policy.open_set
        for similarity in (0.80, 0.9266, 0.93, 0.97):
            decided = policy.decide([Candidate("p_x", "X", similarity, 3)], top_k=1)
            verified = policy.verify(similarity)
            assert decided.confidence == verified.confidence == decided.candidates[0].confidence
            assert decided.is_match == verified.same
