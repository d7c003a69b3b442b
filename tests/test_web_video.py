"""The Video page end to end: Debian's Chromium (Playwright) against a real facegate server with
the slideshow clip's three people enrolled (from photos the clip does not show).

The clip is uploaded through the page's file input; the job must go from queued/running to done
with its progress shown, the timeline must show a row with bars for each of the three people, a
bar must seek the player to its segment, the JSON result must download, and deleting must ask
first (Cancel keeps the video). A file that is no video must be refused with the server's detail.
With API keys required, the key travels in headers only, and an unknown face enrols from its best frame.
Needs Playwright and Chromium: skipped without them, except in CI (``CI=true``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from api_server import free_port, running_server
from camera_clips import enrol_clip_people, slideshow
from test_web import TOO_WIDE, UNLABELLED, axe_violations, browser_page, screenshot

CLIP_PEOPLE = ("Colin Powell", "Tony Blair", "Hugo Chavez")
THUMBS_LOADED = """() => [...document.querySelectorAll("#video-timeline img.thumb")]
  .every((img) => img.complete && img.naturalWidth > 0)"""
PHONE = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A facegate server with the clip's people enrolled; yields its base URL."""
    from facegate.config import load_settings
    from facegate.service.runtime import Runtime

    settings = load_settings().with_values(data_dir=str(tmp_path_factory.mktemp("web-video")), port=free_port())
    runtime = Runtime.build(settings)
    runtime.warmup()
    enrol_clip_people(runtime)
    runtime.close()
    with running_server(settings):
        yield f"http://127.0.0.1:{settings.server.port}"


def videos(base: str) -> list[dict]:
    return httpx.get(f"{base}/v1/videos", timeout=30).json()


def test_video_page_uploads_a_clip_and_shows_who_appears_when(playwright, service, tmp_path):
    clip = slideshow()
    with browser_page(playwright, service) as page:
        page.goto("/#/help")
        page.get_by_role("navigation").get_by_role("link", name="Video").click()
        page.get_by_role("heading", name="Video", level=1).wait_for()
        page.get_by_text("No videos yet").wait_for()

        # upload: the bytes' progress, then the job, followed until done
        page.locator("#video-file").set_input_files(str(clip.path))
        progress = page.locator('#video-upload [data-testid="upload-progress"]')
        progress.wait_for()
        job = page.locator('[data-testid="video-job"]').first
        job.wait_for(timeout=30_000)
        assert "Queued" in progress.inner_text() or "sent" in progress.inner_text()
        assert job.locator("progress").count() == 1
        page.locator('[data-testid="video-job"][data-state="done"]').wait_for(timeout=240_000)
        assert job.get_attribute("data-state") == "done", job.inner_text()
        assert "100%" in job.get_by_test_id("video-progress").inner_text()
        assert job.get_by_test_id("video-state").inner_text() == "done"

        # while running, a job says how far it is and how long it has left
        running = {"state": "running", "progress": 0.42, "eta_s": 75, "processing_fps": 31.25}
        said = page.evaluate("async (job) => (await import('/ui/video.js')).describeProgress(job)", running)
        assert said == "42% · about 1 min 15 s left · 31.3 frames/s", said

        # the timeline opens by itself for the upload that finished: a row with bars per person
        timeline = page.locator("#video-timeline")
        rows = timeline.locator('[data-testid="timeline-row"]')
        for name in CLIP_PEOPLE:
            row = timeline.locator(f'[data-testid="timeline-row"][data-name="{name}"]')
            row.wait_for(timeout=30_000)
            assert row.locator("button.segment").count() >= 1, name
        names = rows.evaluate_all("(els) => els.map((el) => el.dataset.name)")
        assert set(CLIP_PEOPLE) <= set(names), names
        # bars are buttons named by person and time; they sit inside their lane
        blair = timeline.get_by_role("button", name=re.compile(r"^Tony Blair \d")).first
        label = blair.get_attribute("aria-label")
        assert label.startswith("Tony Blair ") and label.endswith(" s") and "–" in label, label
        start = float(blair.get_attribute("data-start"))
        blair_from = next(s for s, _, who in clip.timeline if who == "Tony Blair")
        assert abs(start - blair_from) < 1.5, (start, blair_from)
        # the best frame of each person is shown
        page.wait_for_function(
            THUMBS_LOADED,
            timeout=30_000,
        )

        # a bar seeks the player to its segment's start
        page.wait_for_function("document.querySelector('#video-timeline video').readyState >= 1", timeout=30_000)
        blair.click()
        page.wait_for_function(
            f"Math.abs(document.querySelector('#video-timeline video').currentTime - {start}) < 0.3", timeout=10_000
        )
        at = page.evaluate("document.querySelector('#video-timeline video').currentTime")
        assert abs(at - 5.0) < 1.0, at
        # by keyboard as well: a bar is a button
        colin = timeline.get_by_role("button", name=re.compile(r"^Colin Powell \d")).first
        colin.focus()
        page.keyboard.press("Enter")
        colin_start = float(colin.get_attribute("data-start"))
        page.wait_for_function(
            f"Math.abs(document.querySelector('#video-timeline video').currentTime - {colin_start}) < 0.3",
            timeout=10_000,
        )

        # the JSON result downloads (read with the key header, saved through a Blob link)
        with page.expect_download() as download:
            timeline.get_by_role("button", name="Download JSON").click()
        saved = Path(download.value.path())
        result = json.loads(saved.read_text())
        assert {p["name"] for p in result["people"]} >= set(CLIP_PEOPLE)
        assert download.value.suggested_filename.endswith(".json")
        with page.expect_download() as download:
            timeline.get_by_role("button", name="Download CSV").click()
        csv = Path(download.value.path()).read_text()
        assert "Tony Blair" in csv

        # accessible: every control named, axe clean, nothing sideways on a phone
        assert page.evaluate(UNLABELLED) == []
        assert axe_violations(page) == []
        screenshot(page, "video")
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(300)
        assert page.evaluate(PHONE), page.evaluate(TOO_WIDE)
        screenshot(page, "video-phone")
        page.set_viewport_size({"width": 1280, "height": 900})

        # delete asks first: Cancel keeps the video
        job_id = job.get_attribute("data-id")
        job.get_by_role("button", name="Delete").click()
        dialog = page.locator("#confirm-dialog")
        dialog.wait_for()
        assert "Delete the video" in dialog.inner_text()
        dialog.get_by_role("button", name="Cancel").click()
        page.wait_for_timeout(300)
        assert job.is_visible()
        assert any(v["id"] == job_id for v in videos(service))
        # confirmed, it goes (with its timeline)
        job.get_by_role("button", name="Delete").click()
        dialog.get_by_role("button", name="Delete video").click()
        page.locator(f'[data-testid="video-job"][data-id="{job_id}"]').wait_for(state="detached")
        assert timeline.is_hidden()
        assert not any(v["id"] == job_id for v in videos(service))


def test_video_page_says_a_truncated_file_was_analysed_as_far_as_it_decodes(playwright, service, tmp_path):
    from test_video import truncated_clip

    with browser_page(playwright, service) as page:
        page.goto("/#/video")
        page.get_by_role("heading", name="Video", level=1).wait_for()
        page.locator("#video-file").set_input_files(str(truncated_clip(tmp_path)))
        job = page.locator('[data-testid="video-job"][data-state="done"]').first
        job.wait_for(timeout=240_000)
        assert job.get_by_test_id("video-state").inner_text() == "done · truncated"
        note = job.get_by_test_id("video-truncated")
        assert note.is_visible() and "nothing decodes after" in note.inner_text(), note.inner_text()
        # the timeline says so, and every lane hatches the part that did not decode
        warning = page.locator('#video-timeline [data-testid="timeline-truncated"]')
        warning.wait_for(timeout=30_000)
        job_id = job.get_attribute("data-id")
        at = httpx.get(f"{service}/v1/videos/{job_id}", timeout=30).json()["video"]
        assert f"after {at['truncated_at_s']:.1f} s of {at['duration_s']:.1f} s" in warning.inner_text()
        rows = page.locator('#video-timeline [data-testid="timeline-row"]')
        rows.first.wait_for(timeout=30_000)
        assert rows.count() >= 2 and page.locator("#video-timeline .lane .undecoded").count() == rows.count()
        assert "Hugo Chavez" not in rows.evaluate_all("(els) => els.map((el) => el.dataset.name)")
        assert axe_violations(page) == []
        whole = {"truncated": False, "duration_s": 14.9}
        assert page.evaluate("async (v) => (await import('/ui/video.js')).describeTruncation(v)", whole) == ""
    assert httpx.delete(f"{service}/v1/videos/{job_id}", timeout=30).status_code == 204  # the next test starts empty


def test_video_page_shows_why_a_file_is_refused(playwright, service, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_bytes(b"this is not a video at all\n" * 200)
    with browser_page(playwright, service) as page:
        page.goto("/#/video")
        page.get_by_role("heading", name="Video", level=1).wait_for()
        page.locator("#video-file").set_input_files(str(fake))
        # refused at once (the file is probed on upload): the server's detail is shown, no job is made
        refused = page.locator('#video-upload [role="alert"]').filter(has_text="notes.mp4 was not accepted: ")
        refused.wait_for(timeout=60_000)
        text = refused.inner_text()
        assert len(text.split("not accepted: ", 1)[1]) > 10, text
        assert page.locator('#video-upload [data-testid="upload-progress"]').inner_text() == "Upload failed"
        page.get_by_text("No videos yet").wait_for()
        assert page.locator('[data-testid="video-job"]').count() == 0


def test_unknown_faces_enrol_from_the_timeline_and_the_key_never_goes_in_a_url(playwright, tmp_path):
    # API keys required, a collection where nobody is enrolled yet: everyone in the clip is unknown
    from facegate.config import load_settings

    settings = load_settings().with_values(data_dir=str(tmp_path), port=free_port(), auth="required")
    with running_server(settings) as app:
        base = f"http://127.0.0.1:{settings.server.port}"
        secret = app.state.runtime.keys.create("video ui", ["admin"]).secret
        keyed = {"X-API-Key": secret}
        assert httpx.get(f"{base}/v1/videos").status_code == 401
        made = httpx.post(f"{base}/v1/collections", headers=keyed, json={"name": "strangers"})
        assert made.status_code == 201, made.text
        with browser_page(playwright, base) as page:
            requests: list[tuple[str, dict]] = []
            page.on("request", lambda r: requests.append((r.url, r.headers)))
            page.add_init_script(f"localStorage.setItem('facegate.apiKey', {secret!r})")
            page.add_init_script("localStorage.setItem('facegate.collection', 'strangers')")
            page.goto("/#/video")
            page.get_by_role("heading", name="Video", level=1).wait_for()
            page.get_by_text("No videos yet").wait_for()
            assert "strangers" in page.locator("#video-hint").inner_text()
            page.locator("#video-file").set_input_files(str(slideshow().path))
            page.locator('[data-testid="video-job"][data-state="done"]').wait_for(timeout=240_000)
            job_id = page.locator('[data-testid="video-job"]').first.get_attribute("data-id")
            assert httpx.get(f"{base}/v1/videos/{job_id}", headers=keyed).json()["collection"] == "strangers"

            # the player reads the video with the key in a header, into a Blob
            timeline = page.locator("#video-timeline")
            unknown = timeline.locator('[data-testid="timeline-row"][data-name="unknown-1"]')
            unknown.wait_for(timeout=30_000)
            assert timeline.get_by_role("heading", name="People").count() == 0
            page.wait_for_function("document.querySelector('#video-timeline video').readyState >= 1", timeout=30_000)
            assert page.evaluate("document.querySelector('#video-timeline video').src").startswith("blob:")
            page.wait_for_function(THUMBS_LOADED, timeout=30_000)

            # "Enrol as…": a name, then the best frame becomes a new person of the collection
            unknown.get_by_role("button", name="Enrol unknown-1 as…").click()
            unknown.get_by_label("Name for unknown-1").fill("Video Stranger")
            assert page.evaluate(UNLABELLED) == []
            assert axe_violations(page) == []
            unknown.get_by_role("button", name="Enrol", exact=True).click()
            link = unknown.get_by_role("link", name="Video Stranger")
            link.wait_for(timeout=30_000)
            assert "Enrolled as" in unknown.inner_text()
            screenshot(page, "video-enrolled")
            people = httpx.get(
                f"{base}/v1/people", headers=keyed, params={"collection": "strangers", "q": "Video Stranger"}
            ).json()["items"]
            assert [p["name"] for p in people] == ["Video Stranger"] and people[0]["template_count"] >= 1
            assert link.get_attribute("href") == f"#/people/{people[0]['id']}"

        videos_calls = [(url, headers) for url, headers in requests if "/v1/videos" in url]
        assert any(url.endswith(f"/v1/videos/{job_id}/file") for url, _ in videos_calls)
        assert all(headers.get("x-api-key") == secret for _, headers in videos_calls)
        leaked = [url for url, _ in requests if "api_key" in url or secret in url]
        assert leaked == []
