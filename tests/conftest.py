"""Shared fixtures: real test photos, one engine per session, a fresh model cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
LFW = DATA / "lfw_subset10_krasserm"
ENROLLED = ("Colin_Powell", "Tony_Blair", "Hugo_Chavez", "George_W_Bush")
STRANGER = LFW / "Vladimir_Putin" / "Vladimir_Putin_0001.jpg"
GROUP = DATA / "faceapi_bbt" / "bbt4.jpg"
GROUP_FACES = 6
NO_FACE = DATA / "compreface" / "no_face.jpg"
CHIPS = DATA / "dlib_johns"


def photos(person: str) -> list[Path]:
    """The committed photos of one LFW test person, in order."""
    return sorted((LFW / person).glob("*.jpg"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_dirs(tmp_path_factory):
    """Convert the ONNX model into a fresh cache (so every run exercises the converter)
    and keep data written by the CLI out of the user's home."""
    os.environ["FACEGATE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["FACEGATE_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def engine():
    from facegate.vision.engine import FaceEngine

    return FaceEngine()
