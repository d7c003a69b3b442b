"""Detectors find every face, at any scale, and nothing where there is none."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import CHIPS, GROUP, GROUP_FACES, LFW, NO_FACE
from facegate.vision.blazeface import BlazeFaceDetector
from facegate.vision.detection import FaceDetector
from facegate.vision.dlib_detectors import DlibCnnDetector, DlibHogDetector
from facegate.vision.image import load_image

PHOTO = LFW / "Tony_Blair" / "Tony_Blair_0001.jpg"


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    return BlazeFaceDetector()


def test_detectors_share_one_interface(blazeface):
    assert isinstance(blazeface, FaceDetector)
    assert isinstance(DlibHogDetector(), FaceDetector)


def test_group_photo_every_face_found(blazeface):
    dets = blazeface.detect(load_image(GROUP))
    assert len(dets) == GROUP_FACES
    assert all(0.5 <= d.score <= 1.0 for d in dets)
    assert all(d.keypoints.shape == (6, 2) for d in dets)
    # the faces are distinct: no two boxes overlap much
    for i, a in enumerate(dets):
        for b in dets[i + 1 :]:
            assert a.box.iou(b.box) < 0.3


def test_no_face_photo_gives_nothing(blazeface):
    assert blazeface.detect(load_image(NO_FACE)) == []
    assert blazeface.detect(load_image(NO_FACE), thorough=True) == []
    assert blazeface.detect(np.full((480, 640, 3), 90, np.uint8)) == []


def test_small_face_photo_92x112(blazeface):
    image = cv2.resize(load_image(PHOTO)[40:210, 55:195], (92, 112), interpolation=cv2.INTER_AREA)
    dets = blazeface.detect(image)
    assert len(dets) == 1
    assert 30 < dets[0].box.width < 92


def test_tight_face_chip_fills_the_frame(blazeface):
    """A 150x150 aligned chip is mostly face: found through the bordered retry."""
    for path in sorted(CHIPS.glob("*/*.jpg")):
        dets = blazeface.detect(load_image(path))
        assert len(dets) == 1, path


def test_7000_pixel_photo_with_small_faces(blazeface):
    group = load_image(GROUP)  # 6 faces, ~100 px each in a 710 px photo
    canvas = np.full((4000, 7000, 3), 200, np.uint8)
    canvas[2500 : 2500 + group.shape[0], 5000 : 5000 + group.shape[1]] = group
    assert len(blazeface.detect(canvas)) < GROUP_FACES  # the 192 px view alone misses them
    dets = blazeface.detect(canvas, thorough=True)
    assert len(dets) == GROUP_FACES
    assert all(d.box.x1 >= 5000 and d.box.y1 >= 2500 for d in dets)


def test_huge_face_in_huge_photo(blazeface):
    big = cv2.resize(load_image(PHOTO), (5000, 5000), interpolation=cv2.INTER_LINEAR)
    dets = blazeface.detect(big)
    assert len(dets) == 1
    assert dets[0].box.width > 1500


def test_hog_finds_the_frontal_face_and_scales_small_images():
    hog = DlibHogDetector()
    assert len(hog.detect(load_image(PHOTO))) == 1
    small = cv2.resize(load_image(PHOTO), (125, 125), interpolation=cv2.INTER_AREA)
    assert len(hog.detect(small)) == 1


def test_cnn_detector_finds_the_face():
    dets = DlibCnnDetector().detect(load_image(PHOTO))  # also finds a partial face at the edge
    assert dets and dets[0].score > 0.8
    assert dets[0].box.iou(BlazeFaceDetector().detect(load_image(PHOTO))[0].box) > 0.4
