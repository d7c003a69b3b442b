"""ZIP enrolment (`POST /v1/enroll/zip`): hostile archives are refused within bounded memory, and what is
written is what a user predicts: a folder of photos is a person, nothing is enrolled twice, concurrent and
interrupted imports leave each person whole. Every archive is made here, in the test."""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps
from sqlalchemy import create_engine, func, select

from api_server import free_port, running_server
from conftest import ENROLLED, GROUP, NO_FACE, photos
from facegate.config import Settings
from facegate.store.db import make_engine, upgrade
from facegate.store.errors import StoreError
from facegate.store.records import DerivedTemplate, NewTemplate
from facegate.store.repository import Store
from facegate.store.schema import PersonRow, TemplateRow

MIB = 1024 * 1024
ZIP_TYPE = {"content-type": "application/zip"}
MEMORY_BOUND_MB = 64  # the server's peak resident memory may grow this much while it reads a hostile archive


# ----------------------------------------------------------------- archives


def zip_of(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@dataclass
class Member:
    """An entry written field by field, so its headers can say what they like."""

    name: str
    payload: bytes  # the bytes after the local header, as stored
    method: int = zipfile.ZIP_STORED
    flags: int = 0
    crc: int = 0
    size: int | None = None  # the declared uncompressed size (default: the payload's length)
    extra: bytes = b""

    def local(self) -> bytes:
        name = self.name.encode()
        size = len(self.payload) if self.size is None else self.size
        fixed = struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, self.flags, self.method, 0, 0, self.crc, len(self.payload), size,
            len(name), len(self.extra),
        )  # fmt: skip
        return fixed + name + self.extra

    def central(self, offset: int) -> bytes:
        name = self.name.encode()
        size = len(self.payload) if self.size is None else self.size
        fixed = struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, self.flags, self.method, 0, 0, self.crc, len(self.payload), size,
            len(name), len(self.extra), 0, 0, 0, 0, offset,
        )  # fmt: skip
        return fixed + name + self.extra


def raw_zip(members: list[Member], records: list[tuple[Member, int]] | None = None) -> bytes:
    """Local entries one after another, then central records (by default one per member at its own offset)."""
    out, offsets = bytearray(), []
    for m in members:
        offsets.append(len(out))
        out += m.local() + m.payload
    records = records if records is not None else list(zip(members, offsets, strict=True))
    start = len(out)
    for m, offset in records:
        out += m.central(offset)
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(records), len(records), len(out) - start, start, 0)
    return bytes(out)


def deflated(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def stored(name: str, data: bytes, **kw) -> Member:
    return Member(name, data, crc=zlib.crc32(data), **kw)


def variants(person: str, count: int, seed: int = 0) -> list[bytes]:
    """``count`` different JPEGs (mirror, crop, brightness) of a test person's real photos."""
    rng = random.Random(f"{person}{seed}")
    originals = [Image.open(p).convert("RGB") for p in photos(person)]
    out = []
    for i in range(count):
        img = originals[i % len(originals)]
        if rng.random() < 0.5:
            img = ImageOps.mirror(img)
        m = rng.randint(0, 12)
        img = ImageEnhance.Brightness(img.crop((m, m, img.width - m, img.height - m))).enhance(rng.uniform(0.8, 1.2))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


# ----------------------------------------------------------------- a server in this process


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine):
    engine.warmup()
    db = tmp_path_factory.mktemp("zip") / "facegate.db"
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{db}")
    with running_server(settings):
        yield f"http://127.0.0.1:{settings.server.port}"


@pytest.fixture()
def client(server, request):
    """A client of the shared server, with a collection of its own (``client.params``)."""
    name = request.node.name[:60]
    with httpx.Client(base_url=server, timeout=120) as c:
        assert c.post("/v1/collections", json={"name": name}).status_code == 201
        c.params = {"collection": name}
        yield c


def send(client, archive: bytes, **kw) -> httpx.Response:
    return client.post("/v1/enroll/zip", files={"archive": ("a.zip", archive, "application/zip")}, **kw)


def report(response) -> tuple[dict, dict[str, tuple[str, str | None]]]:
    assert response.status_code == 200, response.text
    body = response.json()
    return body, {f["source"]: (f["status"], f.get("code")) for f in body["files"]}


def people_of(client) -> dict[str, int]:
    return {p["name"]: p["template_count"] for p in client.get("/v1/people", params={"limit": 500}).json()["items"]}


# ----------------------------------------------------------------- what a user predicts


def test_one_persons_folder_is_one_person(client):
    colin = photos("Colin_Powell")
    archive = zip_of({f"Colin Powell/{i}.jpg": p.read_bytes() for i, p in enumerate(colin[:3], 1)})
    body, files = report(send(client, archive))
    assert body["people_created"] == 1 and body["templates_added"] == 3
    assert people_of(client) == {"Colin Powell": 3}
    assert all(status == "added" for status, _ in files.values())


def test_file_names_never_name_people(client):
    tony, hugo = photos("Tony_Blair"), photos("Hugo_Chavez")
    archive = zip_of(
        {
            "Hugo.jpg": hugo[0].read_bytes(),  # at the root: nobody
            "staff/Tony Blair/1.jpg": tony[0].read_bytes(),  # nested: the innermost folder names the person
            "staff/Tony Blair/2.jpg": tony[1].read_bytes(),
            "staff/stray.jpg": hugo[1].read_bytes(),  # beside person folders: nobody
            "Hugo Chavez/1.jpg": hugo[2].read_bytes(),
        }
    )
    body, files = report(send(client, archive))
    assert files["Hugo.jpg"] == ("skipped", "no_person_folder")
    assert files["staff/stray.jpg"] == ("skipped", "no_person_folder")
    assert people_of(client) == {"Tony Blair": 2, "Hugo Chavez": 1}
    assert body["people_created"] == 2 and body["templates_added"] == 3


def test_a_group_photo_in_a_persons_folder_is_not_enrolled(client):
    archive = zip_of({"Ada/1.jpg": photos("Colin_Powell")[0].read_bytes(), "Ada/group.jpg": GROUP.read_bytes()})
    _, files = report(send(client, archive))
    assert files["Ada/group.jpg"] == ("skipped", "multiple_faces")
    assert files["Ada/1.jpg"] == ("added", None)
    assert people_of(client) == {"Ada": 1}


def test_resending_the_same_zip_adds_nothing(client):
    entries = {f"{name}/{p.name}": p.read_bytes() for name in ("Tony_Blair", "Hugo_Chavez") for p in photos(name)}
    entries["Tony_Blair/again.jpg"] = photos("Tony_Blair")[0].read_bytes()  # the same photo twice in one archive
    archive = zip_of(entries)
    first, files = report(send(client, archive))
    assert first["templates_added"] == 8 and files["Tony_Blair/again.jpg"] == ("skipped", "already_enrolled")
    again, files = report(send(client, archive))
    assert (again["people_created"], again["people_updated"], again["templates_added"]) == (0, 0, 0)
    assert set(files.values()) == {("skipped", "already_enrolled")}
    assert people_of(client) == {"Tony_Blair": 4, "Hugo_Chavez": 4}


def test_a_cut_off_zip_then_the_full_one(client):
    folders = {"Colin Powell": "Colin_Powell", "George Bush": "George_W_Bush"}
    entries = {f"{name}/{p.name}": p.read_bytes() for name, folder in folders.items() for p in photos(folder)}
    full = zip_of(entries)
    cut = send(client, full[: len(full) // 2])  # the upload broke off half-way: no central directory
    assert cut.status_code == 422 and cut.json()["code"] == "zip_corrupt"
    assert people_of(client) == {}
    first_half = dict(list(entries.items())[:3])  # or the sender sent part of the photos
    body, _ = report(send(client, zip_of(first_half)))
    assert body["templates_added"] == 3
    body, files = report(send(client, full))
    assert body["templates_added"] == 5 and body["people_created"] == 1 and body["people_updated"] == 1
    assert [files[name] for name in first_half] == [("skipped", "already_enrolled")] * 3
    assert people_of(client) == {"Colin Powell": 4, "George Bush": 4}


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes sizes after each entry's data (data descriptors)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.data += b
        return len(b)


def test_archives_as_writers_make_them_are_read(client, monkeypatch):
    """Not a regression of the old reader (zipfile read these): the new reader must read them too."""
    jpegs = [p.read_bytes() for p in photos("George_W_Bush")[:2]]
    shapes = {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # folders, UTF-8 names, stored and deflated, macOS litter, a comment
        zf.writestr("Zoë Ünal/", b"")
        zf.writestr("Zoë Ünal/1.jpg", jpegs[0], zipfile.ZIP_STORED)
        zf.writestr("Zoë Ünal/2.jpg", jpegs[1], zipfile.ZIP_DEFLATED)
        zf.writestr("__MACOSX/Zoë Ünal/._1.jpg", b"\0" * 100)
        zf.writestr("Zoë Ünal/.DS_Store", b"\0" * 100)
        zf.comment = b"made by a test"
    shapes["Zoë Ünal"] = buf.getvalue()
    stream = _Unseekable()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as zf:  # streamed: data descriptors, a ZIP64 entry
        for i, data in enumerate(jpegs):
            with zf.open(f"Streamed/{i}.jpg", "w", force_zip64=i == 0) as f:
                f.write(data)
    shapes["Streamed"] = bytes(stream.data)
    shapes["Stub"] = b"#!/bin/sh\nexit 0\n" * 64 + zip_of({f"Stub/{i}.jpg": d for i, d in enumerate(jpegs)})
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # zipfile adds a ZIP64 end record from this count on
    shapes["Zip64"] = zip_of({f"Zip64/{i}.jpg": d for i, d in enumerate(jpegs)})
    assert b"PK\x06\x06" in shapes["Zip64"]
    for name, archive in shapes.items():
        body, files = report(send(client, archive))
        assert body["templates_added"] == 2 and set(files.values()) == {("added", None)}, (name, files)
    assert people_of(client) == dict.fromkeys(shapes, 2)


def test_encrypted_and_unsupported_entries_are_reported_not_500(client):
    jpeg = photos("Hugo_Chavez")[0].read_bytes()
    plain = stored("Hugo/1.jpg", jpeg)
    zipcrypto = Member(
        "Hugo/2.jpg", deflated(jpeg), zipfile.ZIP_DEFLATED, flags=0x1, crc=zlib.crc32(jpeg), size=len(jpeg)
    )
    aes_extra = struct.pack("<2H", 0x9901, 7) + struct.pack("<H2sBH", 2, b"AE", 3, zipfile.ZIP_DEFLATED)
    aes = Member("Hugo/3.jpg", deflated(jpeg), 99, flags=0x1, size=len(jpeg), extra=aes_extra)
    archive = raw_zip([plain, zipcrypto, aes])
    _, files = report(send(client, archive))
    assert files["Hugo/1.jpg"] == ("added", None)
    assert files["Hugo/2.jpg"] == ("skipped", "zip_entry_encrypted")
    assert files["Hugo/3.jpg"] == ("skipped", "zip_entry_encrypted")
    for method in (zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2):
        _, files = report(send(client, zip_of({"Hugo/4.jpg": photos("Hugo_Chavez")[1].read_bytes()}, method)))
        assert files["Hugo/4.jpg"] == ("skipped", "zip_entry_unsupported")
    assert people_of(client) == {"Hugo": 1}


def test_overlapping_entries_are_refused(client):
    jpeg = photos("Tony_Blair")[0].read_bytes()
    one = stored("Tony/1.jpg", jpeg)
    same_local = raw_zip([one], [(one, 0)] * 50)  # 50 central records, one local file
    response = send(client, same_local)
    assert response.status_code == 422 and response.json()["code"] == "zip_overlapping_entries", response.text
    inner = stored("Tony/2.jpg", jpeg)
    outer = stored("Tony/1.jpg", b"\xff" * 100 + inner.local() + inner.payload)  # holds a whole entry in its data
    nested = raw_zip([outer], [(outer, 0), (inner, len(outer.local()) + 100)])
    response = send(client, nested)
    assert response.status_code == 422 and response.json()["code"] == "zip_overlapping_entries", response.text
    assert people_of(client) == {}


def test_add_faces_reports_the_real_error(client):
    pid = client.post("/v1/people", json={"name": "Target"}).json()["id"]
    jpeg = photos("Tony_Blair")[0].read_bytes()
    truncated = jpeg[: len(jpeg) // 2]
    added = client.post(f"/v1/people/{pid}/faces", files={"images": ("x.jpg", truncated, "image/jpeg")})
    assert added.status_code == 422 and added.json()["code"] == "image_truncated", added.text
    group = client.post(f"/v1/people/{pid}/faces", files={"images": ("g.jpg", GROUP.read_bytes(), "image/jpeg")})
    assert group.status_code == 422 and group.json()["code"] == "multiple_faces", group.text
    mixed = client.post(
        f"/v1/people/{pid}/faces",
        files=[
            ("images", ("x.jpg", truncated, "image/jpeg")),
            ("images", ("n.jpg", NO_FACE.read_bytes(), "image/jpeg")),
        ],
    )
    assert mixed.status_code == 422 and mixed.json()["code"] == "no_usable_face", mixed.text
    assert "image_truncated" in mixed.json()["detail"] and "no_face" in mixed.json()["detail"]


# ----------------------------------------------------------------- the store (SQLite and PostgreSQL)


def test_the_store_holds_an_image_once_per_person_and_model(database_url):
    store = Store(make_engine(database_url))
    upgrade(store.engine)
    rng = np.random.default_rng(0)

    def t(image: str | None) -> NewTemplate:
        return NewTemplate(rng.normal(size=128).astype(np.float32), source=f"{image}.jpg", content_hash=image)

    first = store.add_to_named("Ada", [t("a"), t("b"), t("a")], model_id="m")
    assert first.created and (first.added, first.already) == ((0, 1), (2,))  # a repeat within one write
    again = store.add_to_named(" Ada ", [t("b"), t("c")], model_id="m")
    assert not again.created and (again.added, again.already) == ((1,), (0,))
    assert store.add_to_named("Ada", [t("a")], model_id="m2").added == (0,)  # another model: another template
    assert store.add_to_person(first.person.id, [t(None), t(None)], model_id="m").added == (0, 1)  # no hash: kept
    bob = store.add_to_named("Bob", [t("a")], model_id="m")  # another person may hold the same image
    (bobs,) = store.templates(bob.person.id)
    with pytest.raises(StoreError) as refused:
        store.move_templates([bobs.id], first.person.id)
    assert refused.value.code == "already_enrolled" and len(store.templates(bob.person.id)) == 1

    ada = {r.source: r.id for r in store.templates(first.person.id) if r.model_id == "m"}
    store.add_to_named("Ada", [t("c")], model_id="m3")  # "c" holds an m3 template already
    derived = [DerivedTemplate(ada[f"{image}.jpg"], rng.normal(size=128)) for image in ("a", "c")]
    assert store.add_derived_templates("m3", derived) == 2  # no collision: the second copy keeps no hash
    assert store.add_to_named("Ada", [t("a")], model_id="m3").already == (0,)  # re-embedded, then re-sent

    gate = threading.Barrier(8)
    results: list = []

    def write(i: int) -> None:
        gate.wait()
        results.append(store.add_to_named("Cy", [t("shared"), t(f"own{i}")], model_id="m"))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and sum(r.created for r in results) == 1
    assert sum(len(r.added) for r in results) == 9 == store.get_person(results[0].person.id).template_count
    assert {r.person.id for r in results} == {results[0].person.id}
    store.engine.dispose()


# ----------------------------------------------------------------- concurrency (SQLite and PostgreSQL)


def test_concurrent_zips_naming_the_same_people_merge(database_url, engine):
    engine.warmup()
    shared = {f"{n}/{p.name}": p.read_bytes() for n in ("Colin_Powell", "Tony_Blair") for p in photos(n)}
    archives = [
        zip_of(shared | {f"{n}/own_{i}.jpg": variants(n, 1, seed=i)[0] for n in ("Colin_Powell", "Tony_Blair")})
        for i in range(10)
    ]
    settings = Settings().with_values(port=free_port(), database_url=database_url)
    with running_server(settings):
        base = f"http://127.0.0.1:{settings.server.port}"
        answers: list = [None] * len(archives)
        gate = threading.Barrier(len(archives))

        def post(i: int) -> None:
            with httpx.Client(base_url=base, timeout=300) as c:
                gate.wait()
                answers[i] = send(c, archives[i])

        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(archives))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with httpx.Client(base_url=base, timeout=60) as c:
            people = people_of(c)
    bodies = [report(a)[0] for a in answers]
    assert people == {"Colin_Powell": 14, "Tony_Blair": 14}  # 4 shared photos + 10 own photos each
    assert sum(b["people_created"] for b in bodies) == 2
    assert sum(b["templates_added"] for b in bodies) == 28  # each report says exactly what it wrote
    assert sum(f["status"] == "added" for b in bodies for f in b["files"]) == 28
    assert db_state(database_url)[1:] == (0, 0)


# ----------------------------------------------------------------- a server in its own process


def db_state(url: str) -> tuple[dict[str, int], int, int]:
    """(templates per person, images stored twice for one person, people without a template)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        per_person = dict(
            conn.execute(
                select(PersonRow.name, func.count(TemplateRow.id)).outerjoin(TemplateRow).group_by(PersonRow.id)
            ).all()
        )
        twice = conn.execute(
            select(func.count()).select_from(
                select(TemplateRow.person_id, TemplateRow.source)
                .group_by(TemplateRow.person_id, TemplateRow.source)
                .having(func.count() > 1)
                .subquery()
            )
        ).scalar()
    engine.dispose()
    return {k: v for k, v in per_person.items() if v}, twice, sum(1 for v in per_person.values() if not v)


@contextlib.contextmanager
def served(tmp_path: Path, database_url: str | None = None):
    """``facegate serve`` as a child process, ready; yields (process, base URL)."""
    port = free_port()
    env = {**os.environ, "FACEGATE_DATA_DIR": str(tmp_path), "FACEGATE_LOG_LEVEL": "warning"}
    cmd = [sys.executable, "-m", "facegate", "serve", "--port", str(port)]
    proc = subprocess.Popen([*cmd, *(["--db", database_url] if database_url else [])], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def memory_mb(pid: int) -> dict[str, float]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: int(v.split()[0]) / 1024 for k, v in (line.split(":", 1) for line in lines) if k in ("VmRSS", "VmHWM")}


def peak_growth(pid: int, base: str, archive: bytes, times: int = 3) -> tuple[list[httpx.Response], float, float]:
    """Send an archive ``times`` times; the answers, the peak RSS growth over the RSS before, and the RSS growth."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from the resident size
    before = memory_mb(pid)["VmRSS"]
    with httpx.Client(base_url=base, timeout=600) as c:
        answers = [c.post("/v1/enroll/zip", content=archive, headers=ZIP_TYPE) for _ in range(times)]
    after = memory_mb(pid)
    return answers, after["VmHWM"] - before, after["VmRSS"] - before


@pytest.fixture(scope="module")
def server_process(tmp_path_factory):
    with served(tmp_path_factory.mktemp("served")) as (proc, base):
        yield proc, base


def test_a_thousand_one_mib_entries_of_zeros(server_process):
    proc, base = server_process
    archive = zip_of({f"P/{i}.jpg": bytes(MIB) for i in range(1000)})
    assert len(archive) < 2 * MIB
    answers, peak, kept = peak_growth(proc.pid, base, archive)
    print(f"1000 x 1 MiB zeros ({len(archive)} bytes) x3: peak +{peak:.0f} MB, resident +{kept:.0f} MB")
    for a in answers:
        assert a.status_code == 413 and a.json()["code"] == "zip_bomb", a.text
    assert peak < MEMORY_BOUND_MB and kept < MEMORY_BOUND_MB


def test_an_entry_that_inflates_past_its_declared_size(server_process):
    proc, base = server_process
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    gib = b"".join(c.compress(bytes(MIB)) for _ in range(1024)) + c.flush()  # 1 GiB of zeros, ~1 MB deflated
    liar = Member("P/1.jpg", gib, zipfile.ZIP_DEFLATED, size=1000)  # says 1,000 bytes: a ratio of 0.001
    answers, peak, kept = peak_growth(proc.pid, base, raw_zip([liar]))
    print(f"1 GiB entry declared as 1,000 bytes ({len(gib)} bytes) x3: peak +{peak:.0f} MB, resident +{kept:.0f} MB")
    for a in answers:
        assert a.status_code == 413 and a.json()["code"] == "zip_bomb", a.text
    assert peak < MEMORY_BOUND_MB and kept < MEMORY_BOUND_MB


def test_kill_9_during_a_zip_then_resend(database_url, tmp_path):
    per_person = 30
    archive = zip_of({f"{n}/{i:03d}.jpg": data for n in ENROLLED for i, data in enumerate(variants(n, per_person))})
    expected = {n: per_person for n in ENROLLED}
    with served(tmp_path, database_url) as (proc, base):

        def post() -> None:
            with contextlib.suppress(httpx.TransportError):  # the server dies under it
                httpx.post(f"{base}/v1/enroll/zip", content=archive, headers=ZIP_TYPE, timeout=300)

        sender = threading.Thread(target=post, daemon=True)
        sender.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not db_state(database_url)[0]:  # until the first person is written
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        sender.join(timeout=60)
    written, twice, empty = db_state(database_url)
    assert written, "the server was killed before it wrote anything"
    assert len(written) < len(expected), "the ZIP was finished before the server could be killed"
    assert all(written[name] == per_person for name in written)  # nobody half-enrolled
    assert (twice, empty) == (0, 0)

    with served(tmp_path, database_url) as (_, base):
        again = httpx.post(f"{base}/v1/enroll/zip", content=archive, headers=ZIP_TYPE, timeout=300)
    body, files = report(again)
    already = sum(written.values())
    assert body["templates_added"] == per_person * len(expected) - already
    assert sum(code == "already_enrolled" for _, code in files.values()) == already
    assert db_state(database_url) == (expected, 0, 0)
