"""`kill -9` in the middle of a 500+ photo import leaves the database consistent; a re-run completes it."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time

from PIL import Image, ImageEnhance, ImageOps
from sqlalchemy import create_engine, func, select

from conftest import ENROLLED, photos
from facegate.store.schema import PersonRow, TemplateRow

PER_PERSON = 130  # 4 people x 130 = 520 photos


def make_photo_folder(root) -> dict[str, int]:
    """Per person, 130 variants (mirror, crop, brightness) of their 4 real test photos."""
    rng = random.Random(0)
    for name in ENROLLED:
        folder = root / name
        folder.mkdir()
        originals = [Image.open(p).convert("RGB") for p in photos(name)]
        for i in range(PER_PERSON):
            img = originals[i % len(originals)]
            if rng.random() < 0.5:
                img = ImageOps.mirror(img)
            m = rng.randint(0, 12)
            img = img.crop((m, m, img.width - m, img.height - m))
            img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
            img.save(folder / f"{i:03d}.jpg", quality=90)
    return {name: PER_PERSON for name in ENROLLED}


def state(url: str) -> tuple[dict[str, int], int]:
    """(templates per person, templates whose source appears more than once)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        per_person = dict(
            conn.execute(
                select(PersonRow.name, func.count(TemplateRow.id)).outerjoin(TemplateRow).group_by(PersonRow.id)
            ).all()
        )
        dupes = conn.execute(
            select(func.count()).select_from(
                select(TemplateRow.source).group_by(TemplateRow.source).having(func.count() > 1).subquery()
            )
        ).scalar()
    engine.dispose()
    return per_person, dupes


def test_kill_9_during_import_then_resume(database_url, tmp_path):
    expected = make_photo_folder(tmp_path)
    exe = [shutil.which("facegate") or sys.executable, *([] if shutil.which("facegate") else ["-m", "facegate"])]
    cmd = [*exe, "import", str(tmp_path), "--db", database_url, "--no-chips"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if state(database_url)[0]:  # the first person has been committed
                break
        except Exception:  # the schema may not exist yet
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    per_person, dupes = state(database_url)
    assert per_person, "the import was killed before it wrote anything"
    assert len(per_person) < len(expected), "the import finished before it could be interrupted"
    assert all(per_person[name] == expected[name] for name in per_person)  # nobody half-enrolled
    assert dupes == 0

    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    assert f"{sum(per_person.values())} already imported" in out
    per_person, dupes = state(database_url)
    assert per_person == expected and dupes == 0
