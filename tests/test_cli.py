"""The facegate command, run as a user would: a real process per command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ENROLLED, GROUP, GROUP_FACES, NO_FACE, STRANGER, photos


def facegate(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("facegate") or ""
    cmd = [exe] if exe else [sys.executable, "-m", "facegate.cli"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"facegate {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def people_dir(tmp_path_factory) -> Path:
    """A folder per person with their first three photos, as `facegate import` expects."""
    root = tmp_path_factory.mktemp("people")
    for name in ENROLLED[:3]:
        (root / name).mkdir()
        for p in photos(name)[:3]:
            shutil.copy(p, root / name / p.name)
    return root


def copy_db(url: str, tmp_path: Path) -> str:
    """A copy of an SQLite database (file and WAL), so a test can change it freely."""
    source = Path(url.removeprefix("sqlite:///"))
    target = tmp_path / source.name
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")
    return f"sqlite:///{target}"


@pytest.fixture(scope="module")
def db_url(people_dir, tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('g') / 'facegate.db'}"
    out = facegate("import", str(people_dir), "--db", url)
    assert "imported 3 people, 9 templates" in out.stdout
    return url


def test_import_then_identify_json(db_url):
    for name in ENROLLED[:3]:
        out = facegate("identify", str(photos(name)[3]), "--db", db_url, "--json")
        faces = json.loads(out.stdout)["faces"]
        assert faces[0]["status"] == "match" and faces[0]["name"] == name
        assert set(faces[0]) >= {"box", "confidence", "similarity", "quality", "person_id"}


def test_enroll_adds_a_person_and_stranger_stays_unknown(db_url, tmp_path):
    path = copy_db(db_url, tmp_path)
    facegate("enroll", "George_W_Bush", *map(str, photos("George_W_Bush")[:3]), "--db", path)
    out = facegate("identify", str(photos("George_W_Bush")[3]), "--db", path, "--json")
    assert json.loads(out.stdout)["faces"][0]["name"] == "George_W_Bush"
    out = facegate("identify", str(STRANGER), "--db", path, "--json", "--top-k", "2")
    face = json.loads(out.stdout)["faces"][0]
    assert face["status"] == "unknown" and len(face["candidates"]) == 2
    listing = facegate("people", "--db", path).stdout
    assert "4 people, 12 templates" in listing
    facegate("delete", "George_W_Bush", "--db", path)
    assert "3 people, 9 templates" in facegate("people", "--db", path).stdout


def test_verify_same_and_different():
    same = json.loads(facegate("verify", str(photos("Tony_Blair")[0]), str(photos("Tony_Blair")[1]), "--json").stdout)
    diff = json.loads(facegate("verify", str(photos("Tony_Blair")[0]), str(STRANGER), "--json").stdout)
    assert same["same"] is True and diff["same"] is False
    assert same["similarity"] > diff["similarity"]


def test_detect_draws_every_face(tmp_path):
    out = tmp_path / "drawn.jpg"
    res = facegate("detect", str(GROUP), "--draw", str(out), "--json")
    assert len(json.loads(res.stdout[: res.stdout.rindex("}") + 1])["faces"]) == GROUP_FACES
    assert out.stat().st_size > 10_000


def test_identify_with_no_face_and_bad_input(db_url, tmp_path):
    out = facegate("identify", str(NO_FACE), "--db", db_url, "--json")
    assert json.loads(out.stdout)["faces"] == []
    bogus = tmp_path / "fake.jpg"
    bogus.write_text("this is not a jpeg")
    res = facegate("identify", str(bogus), "--db", db_url, check=False)
    assert res.returncode == 2 and "image_unsupported_type" in res.stderr
    res = facegate("enroll", "Nobody", str(NO_FACE), "--db", db_url, check=False)
    assert res.returncode == 1
    assert "3 people, 9 templates" in facegate("people", "--db", db_url).stdout


def test_flip_mode_has_its_own_gallery(db_url, people_dir, tmp_path):
    res = facegate("--flip", "identify", str(photos(ENROLLED[0])[3]), "--db", db_url, check=False)
    assert res.returncode == 2 and "model_mismatch" in res.stderr  # plain templates never mix with flip
    flip_db = copy_db(db_url, tmp_path)
    res = facegate("--flip", "import", str(people_dir), "--db", flip_db, check=False)  # no silent second space
    assert res.returncode == 2 and "model_mismatch" in res.stderr and "dlib_resnet_v1+flip" in res.stderr
    assert "3 people, 9 templates" in facegate("people", "--db", flip_db).stdout  # nothing was written
    facegate("collections", "create", "flipped", "--db", flip_db)  # a collection of flip templates of its own
    facegate("--flip", "import", str(people_dir), "--db", flip_db, "--collection", "flipped")
    out = facegate(
        "--flip", "identify", str(photos(ENROLLED[1])[3]), "--db", flip_db, "--json", "--collection", "flipped"
    )
    assert json.loads(out.stdout)["faces"][0]["name"] == ENROLLED[1]


def test_enroll_warns_about_low_quality_faces(tmp_path):
    from PIL import Image, ImageFilter

    poor = tmp_path / "poor.jpg"
    img = Image.open(photos(ENROLLED[2])[0]).filter(ImageFilter.GaussianBlur(4)).point(lambda v: v * 0.2)
    img.save(poor)
    res = facegate("enroll", "Blurry", str(poor), "--db", f"sqlite:///{tmp_path / 'g.db'}")
    assert "low face quality" in res.stderr and "blurry" in res.stderr
    assert "enrolled Blurry: 1 template(s)" in res.stdout


def test_db_upgrade_creates_the_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    first = facegate("db", "upgrade", "--url", url)
    again = facegate("db", "upgrade", "--url", url)
    from facegate.store.db import head_revision

    head = f"revision {head_revision()}"
    assert head in first.stdout and head in again.stdout and head_revision() >= "0009"


def test_chips_are_stored_unless_turned_off(db_url, tmp_path):
    from sqlalchemy import create_engine, select

    from facegate.store.schema import TemplateRow

    with create_engine(db_url).connect() as conn:
        chips = conn.scalars(select(TemplateRow.chip_jpeg)).all()
    assert len(chips) == 9 and all(c.startswith(b"\xff\xd8") for c in chips)
    url = f"sqlite:///{tmp_path / 'nochips.db'}"
    facegate("enroll", "Tony", str(photos("Tony_Blair")[0]), "--db", url, "--no-chips")
    with create_engine(url).connect() as conn:
        assert conn.scalars(select(TemplateRow.chip_jpeg)).all() == [None]


def test_export_and_import_archive(db_url, tmp_path):
    archive = tmp_path / "office.zip"
    assert "exported 9 templates" in facegate("export", str(archive), "--db", db_url).stdout
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert "imported 3 people and 9 templates" in facegate("import-archive", str(archive), "--db", fresh).stdout
    out = facegate("identify", str(photos(ENROLLED[2])[3]), "--db", fresh, "--json")
    assert json.loads(out.stdout)["faces"][0]["name"] == ENROLLED[2]
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    res = facegate("import-archive", str(tmp_path / "bad.zip"), "--db", fresh, check=False)
    assert res.returncode == 2 and "archive_invalid" in res.stderr


def test_reembed_command(db_url, tmp_path):
    url = copy_db(db_url, tmp_path)
    assert "added 9 dlib_resnet_v1+flip templates" in facegate("--flip", "reembed", "--db", url).stdout
    assert "added 0 " in facegate("--flip", "reembed", "--db", url).stdout
    out = facegate("--flip", "identify", str(photos(ENROLLED[0])[3]), "--db", url, "--json")
    assert json.loads(out.stdout)["faces"][0]["name"] == ENROLLED[0]
