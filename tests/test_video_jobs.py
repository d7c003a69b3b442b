"""Video jobs over HTTP against a real server: upload, progress, timeline, exports, cancel, refusals, kill -9."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from PIL import Image

from api_server import free_port, running_server, serve_process
from camera_clips import enrol_clip_people, slideshow


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from facegate.config import load_settings
    from facegate.service.runtime import Runtime

    data = tmp_path_factory.mktemp("videos")
    settings = load_settings().with_values(data_dir=str(data), max_video_bytes=5_000_000)
    runtime = Runtime.build(settings)
    runtime.warmup()
    enrol_clip_people(runtime)
    runtime.close()
    settings = settings.with_values(port=free_port())
    with running_server(settings) as app:
        yield app, f"http://127.0.0.1:{settings.server.port}", data


def upload(base: str, data: bytes, name: str = "clip.mp4", **params) -> httpx.Response:
    return httpx.post(f"{base}/v1/videos", params=params, files={"file": (name, data, "video/mp4")}, timeout=60)


def wait_done(base: str, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    seen = set()
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/v1/videos/{job_id}").json()
        seen.add(job["state"])
        if job["state"] in ("done", "failed", "cancelled"):
            job["seen"] = seen
            return job
        time.sleep(0.2)
    pytest.fail(f"job {job_id} not finished within {timeout} s")


def test_an_uploaded_video_becomes_the_same_timeline_as_the_cli_s(service, tmp_path):
    _, base, data = service
    clip = slideshow()
    created = upload(base, clip.path.read_bytes(), "slideshow.mp4")
    assert created.status_code == 202, created.text
    job = created.json()
    assert (job["state"], job["name"], job["video"]["width"]) == ("queued", "slideshow.mp4", 640)
    done = wait_done(base, job["id"])
    assert done["state"] == "done" and done["progress"] == 1.0 and done["attempts"] == 1, done
    result = httpx.get(f"{base}/v1/videos/{job['id']}/result").json()
    assert {p["name"] for p in result["people"]} == {"Colin Powell", "Tony Blair", "Hugo Chavez"}

    cli = subprocess.run(
        [sys.executable, "-m", "facegate", "video", str(clip.path), "--json", "cli.json"],
        cwd=tmp_path,
        env={**os.environ, "FACEGATE_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stderr
    from_cli = json.loads((tmp_path / "cli.json").read_text())
    for part in (result, from_cli):
        part.pop("processing_s")
    assert result == from_cli  # one analysis, whoever asks

    rows = list(csv.DictReader(io.StringIO(httpx.get(f"{base}/v1/videos/{job['id']}/result?format=csv").text)))
    assert len(rows) == sum(len(p["segments"]) for p in result["people"] + result["unknown"])
    best = result["people"][0]["best_frame"]
    box = ",".join(str(v) for v in best["box"])
    thumb = httpx.get(f"{base}/v1/videos/{job['id']}/frame.jpg", params={"t_s": best["t_s"], "box": box})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size[0] < 640  # cropped around the face
    played = httpx.get(f"{base}/v1/videos/{job['id']}/file", headers={"Range": "bytes=0-99"})
    assert played.status_code == 206 and len(played.content) == 100

    assert httpx.delete(f"{base}/v1/videos/{job['id']}").status_code == 204
    assert httpx.get(f"{base}/v1/videos/{job['id']}").json()["code"] == "video_not_found"


def test_refusals_have_codes_and_leave_nothing_behind(service):
    _, base, data = service
    before = set((data / "videos").glob("*")) if (data / "videos").exists() else set()
    not_video = upload(base, b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000), "junk.mp4")
    assert not_video.status_code == 422 and not_video.json()["code"].startswith("source_"), not_video.text
    assert str(data) not in not_video.text and "/tmp" not in not_video.text  # no server path in the answer
    too_big = upload(base, os.urandom(6_000_000), "big.mp4")
    assert (too_big.status_code, too_big.json()["code"]) == (413, "video_too_large")
    missing = httpx.post(f"{base}/v1/videos", files={"other": ("a.mp4", b"x", "video/mp4")})
    assert (missing.status_code, missing.json()["code"]) == (422, "video_missing")
    wrong_type = httpx.post(f"{base}/v1/videos", content=b"{}", headers={"content-type": "application/json"})
    assert (wrong_type.status_code, wrong_type.json()["code"]) == (415, "unsupported_media_type")
    nowhere = upload(base, slideshow().path.read_bytes(), collection="nope")
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, "collection_not_found")
    assert (set((data / "videos").glob("*")) if (data / "videos").exists() else set()) == before
    assert httpx.get(f"{base}/readyz").status_code == 200


def test_a_truncated_or_damaged_upload_is_done_with_the_part_that_decodes_and_says_where(service, tmp_path):
    from test_video import damaged_clip, truncated_clip

    _, base, _ = service
    for clip, code in ((truncated_clip(tmp_path), "video_truncated"), (damaged_clip(tmp_path), "source_decode_failed")):
        created = upload(base, clip.read_bytes(), clip.name)
        assert created.status_code == 202, created.text
        job = wait_done(base, created.json()["id"])
        assert job["state"] == "done", job
        video = job["video"]
        assert video["truncated"] is True and video["truncated_code"] == code, video
        assert 0 < video["truncated_at_s"] < video["duration_s"]
        result = httpx.get(f"{base}/v1/videos/{job['id']}/result").json()
        assert result["video"]["truncated_at_s"] == video["truncated_at_s"]
        assert "Colin Powell" in {p["name"] for p in result["people"]}
        assert "/tmp" not in json.dumps(result) and "/tmp" not in json.dumps(job, default=list)
        assert httpx.delete(f"{base}/v1/videos/{job['id']}").status_code == 204
    assert httpx.get(f"{base}/readyz").status_code == 200


def test_a_job_can_be_cancelled(service):
    _, base, _ = service
    job = upload(base, slideshow().path.read_bytes(), every_frame="true").json()
    cancelled = httpx.delete(f"{base}/v1/videos/{job['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert wait_done(base, job["id"])["state"] == "cancelled"
    with pytest.raises(AssertionError):
        assert httpx.get(f"{base}/v1/videos/{job['id']}/result").status_code == 200
    assert httpx.get(f"{base}/v1/videos/{job['id']}/result").json()["code"] == "video_not_done"


def test_a_job_running_when_the_server_is_killed_is_resumed_after_restart(tmp_path):
    from facegate.config import load_settings
    from facegate.service.runtime import Runtime

    runtime = Runtime.build(load_settings().with_values(data_dir=str(tmp_path)))
    enrol_clip_people(runtime)
    runtime.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"FACEGATE_DATA_DIR": str(tmp_path), "FACEGATE_VIDEO_LEASE": "2"}

    def serve() -> subprocess.Popen:
        return serve_process(port, env)

    server = serve()
    try:
        job = upload(base, slideshow().path.read_bytes(), every_frame="true").json()
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/v1/videos/{job['id']}").json()["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        server = serve()
        done = wait_done(base, job["id"], timeout=180)
        assert (done["state"], done["attempts"]) == ("done", 2), done  # resumed from the start
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
