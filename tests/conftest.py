"""Shared fixtures: real test photos, one engine per session, a fresh model cache."""

from __future__ import annotations

import contextlib
import os
import uuid
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


POSTGRES_ADMIN_URL = os.environ.get(
    "FACEGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database: an SQLite file, or a fresh PostgreSQL database dropped afterwards.

    PostgreSQL is required when CI=true; elsewhere its tests skip if no server answers.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'facegate.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url():
    """An empty PostgreSQL database (for what only a shared server can show: several processes)."""
    with postgres_database() as url:
        yield url


@contextlib.contextmanager
def postgres_database():
    from sqlalchemy import create_engine, text

    try:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # no server here
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {POSTGRES_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} (set FACEGATE_TEST_POSTGRES_URL)")
    name = f"facegate_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def load_gallery(store, model_id: str, collection: str = "default"):
    """The search index of a stored collection, built as the service builds it."""
    from facegate.service.indexes import build_gallery

    return build_gallery(store.index_rows(model_id, collection), model_id)


def identify(gallery, embeddings, top_k: int = 0, policy=None, qualities=None):
    """Decisions for embeddings (N, 128) against a gallery, by the one decision policy (as the service calls it)."""
    from facegate.gallery.decision import DecisionPolicy

    policy = policy or DecisionPolicy.for_model(gallery.model_id)
    if not len(embeddings):
        return []
    shape = gallery.shape()
    found = gallery.search(embeddings, top_k=max(2, top_k))
    qualities = qualities or [None] * len(found)
    return [policy.decide(c, top_k, shape=shape, quality=q) for c, q in zip(found, qualities, strict=True)]


@pytest.fixture(scope="module")
def playwright():
    """Playwright for the browser tests: skipped without it or Chromium, required when ``CI=true``."""
    from test_web import require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p
