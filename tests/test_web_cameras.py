"""The Cameras page end to end: Debian's Chromium (Playwright) against a real facegate server that
watches a real RTSP camera (``tests/rtsp_server.py`` serving the slideshow clip of three people,
who are enrolled from other photos).

The camera is added through the page's form; its state badge must turn live, its canvas must show
the server's MJPEG re-stream (frames with the server-drawn green box of a match), its people list
must name someone of the clip; editing and deleting (which asks first) go through the page too.
With API keys required, the live view must authenticate with the key in a header: no requested
URL carries the key. Needs Playwright, Chromium and the RTSP server (python3-gi, gst-rtsp-server):
skipped without them, except in CI (``CI=true``), where they are required.
"""

from __future__ import annotations

import time

import httpx
import pytest

from api_server import free_port, running_server
from camera_clips import enrol_clip_people
from camera_servers import RtspServer, require_rtsp
from test_web import TOO_WIDE, UNLABELLED, axe_violations, browser_page, require_browser, screenshot

CLIP_PEOPLE = ("Colin Powell", "Tony Blair", "Hugo Chavez")

# The live view's canvas now: how many frames were drawn, whether it shows a picture (not one flat
# colour) and whether a pixel is the green of the server's box around a match.
CANVAS = """(tile) => {
  const canvas = tile.querySelector("canvas");
  const { width, height } = canvas;
  const px = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let green = false;
  let lo = 255;
  let hi = 0;
  for (let i = 0; i < px.length; i += 4 * 3) {
    const [r, g, b] = [px[i], px[i + 1], px[i + 2]];
    if (g > 150 && r < 80 && b < 130) green = true;
    lo = Math.min(lo, g);
    hi = Math.max(hi, g);
  }
  return { frames: Number(canvas.dataset.frames || 0), width, height, picture: hi - lo > 40, green };
}"""


@pytest.fixture(scope="module")
def playwright():
    require_browser()
    require_rtsp()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def rtsp():
    require_rtsp()
    server = RtspServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


def camera_settings(data_dir, **values):
    from facegate.config import load_settings

    return load_settings().with_values(
        data_dir=str(data_dir), port=free_port(), camera_lease=3.0, camera_stall=4.0, **values
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A facegate server (cameras on) with the clip's people enrolled; yields its base URL."""
    from facegate.service.runtime import Runtime

    settings = camera_settings(tmp_path_factory.mktemp("web-cameras"))
    runtime = Runtime.build(settings)
    runtime.warmup()
    enrol_clip_people(runtime)
    runtime.close()
    with running_server(settings):
        yield f"http://127.0.0.1:{settings.server.port}"


def until(page, what: str, predicate, timeout: float, every_ms: int = 250):
    """Poll ``predicate()`` (with the page alive) until it is truthy; returns its value or fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(every_ms)
    pytest.fail(f"{what}: not reached within {timeout} s")


def test_cameras_page_adds_watches_edits_and_deletes_a_camera(playwright, service, rtsp):
    with browser_page(playwright, service) as page:
        page.goto("/#/help")
        page.get_by_role("navigation").get_by_role("link", name="Cameras").click()
        page.get_by_role("heading", name="Cameras", level=1).wait_for()
        page.get_by_text("No cameras yet").wait_for()

        # a URL the server refuses: its detail is shown and nothing is added
        page.get_by_label("Camera name").fill("Front door")
        page.get_by_label("Camera URL").fill("ftp://example.org/cam")
        page.get_by_role("button", name="Add camera").click()
        error = page.locator("#add-camera-error")
        error.filter(has_text="Cannot add Front door").wait_for()
        refused = error.inner_text()
        assert "ftp" in refused.lower() or "url" in refused.lower(), refused
        assert httpx.get(f"{service}/v1/cameras").json() == []

        # the real camera, with credentials in its URL (they are not shown again)
        page.get_by_label("Camera URL").fill(rtsp.url(userinfo="admin:s3cret@"))
        page.get_by_label("Frames per second").fill("5")
        page.get_by_role("button", name="Add camera").click()
        tile = page.locator('[data-testid="camera"][data-name="Front door"]')
        tile.wait_for()
        assert page.locator("#add-camera-error").inner_text() == ""
        [camera] = httpx.get(f"{service}/v1/cameras").json()
        assert camera["name"] == "Front door" and camera["fps"] == 5
        tile.get_by_test_id("camera-state").filter(has_text="live").wait_for(timeout=60_000)
        assert "s3cret" not in tile.inner_text() and "admin:***@" in tile.inner_text()

        # the live view: frames from the MJPEG stream, with the server's green box of a match
        handle = tile.element_handle()
        view = until(page, "a green box on the canvas", lambda: (v := page.evaluate(CANVAS, handle))["green"] and v, 60)
        assert view["picture"] and (view["width"], view["height"]) == (640, 480), view
        until(page, "a second frame", lambda: page.evaluate(CANVAS, handle)["frames"] >= 2, 60)  # a stream, not one
        # who is in front of it now, named from the server's tracks
        people = tile.get_by_test_id("camera-people")
        named = until(
            page, "a person named", lambda: next((n for n in CLIP_PEOPLE if n in people.inner_text()), None), 30
        )
        assert "%" in people.inner_text(), people.inner_text()
        stats = tile.get_by_test_id("camera-stats").inner_text()
        assert "fps processed" in stats and "dropped" in stats, stats
        print(f"cameras page: {named} named; {stats}; {view['frames']} frames drawn")
        screenshot(page, "cameras")

        # accessible, and no sideways scrolling on a phone, with a live camera on the page
        assert page.evaluate(UNLABELLED) == []
        assert axe_violations(page) == []
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.evaluate(TOO_WIDE)
        screenshot(page, "cameras-phone")
        page.set_viewport_size({"width": 1280, "height": 900})

        # edit: a new frame rate (the URL, shown redacted, is left as it is and keeps its password)
        tile.get_by_role("button", name="Edit Front door").click()
        form = tile.get_by_test_id("edit-camera")
        form.get_by_label("Frames per second").fill("3")
        form.get_by_role("button", name="Save").click()
        form.wait_for(state="detached")
        tile.get_by_text("at most 3 fps").wait_for()
        camera = httpx.get(f"{service}/v1/cameras/{camera['id']}").json()
        assert camera["fps"] == 3 and camera["url"].startswith("rtsp://admin:***@"), camera
        tile.get_by_test_id("camera-state").filter(has_text="live").wait_for(timeout=60_000)
        # disabling stops it
        tile.get_by_role("button", name="Edit Front door").click()
        form.get_by_label("Enabled").uncheck()
        form.get_by_role("button", name="Save").click()
        tile.get_by_test_id("camera-state").filter(has_text="stopped").wait_for(timeout=15_000)
        assert httpx.get(f"{service}/v1/cameras/{camera['id']}").json()["enabled"] is False

        # delete asks first, naming the camera; Cancel keeps it
        tile.get_by_role("button", name="Delete Front door").click()
        dialog = page.locator("#confirm-dialog")
        dialog.wait_for()
        assert "Front door" in page.locator("#confirm-text").inner_text()
        dialog.get_by_role("button", name="Cancel").click()
        page.wait_for_timeout(500)
        assert httpx.get(f"{service}/v1/cameras/{camera['id']}").status_code == 200
        assert tile.count() == 1
        tile.get_by_role("button", name="Delete Front door").click()
        dialog.wait_for()
        dialog.get_by_role("button", name="Delete camera").click()
        tile.wait_for(state="detached")
        assert httpx.get(f"{service}/v1/cameras").json() == []
        page.get_by_text("No cameras yet").wait_for()


def test_the_live_view_sends_the_api_key_in_a_header_never_in_a_url(playwright, rtsp, tmp_path):
    settings = camera_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'keyed.db'}", auth="required")
    with running_server(settings) as app:
        base = f"http://127.0.0.1:{settings.server.port}"
        secret = app.state.runtime.keys.create("cameras ui", ["admin"]).secret
        keyed = {"X-API-Key": secret}
        assert httpx.get(f"{base}/v1/cameras").status_code == 401
        created = httpx.post(f"{base}/v1/cameras", headers=keyed, json={"name": "Yard", "url": rtsp.url(), "fps": 5})
        assert created.status_code == 201, created.text
        with browser_page(playwright, base) as page:
            requests: list[tuple[str, dict]] = []
            page.on("request", lambda r: requests.append((r.url, r.headers)))
            page.add_init_script(f"localStorage.setItem('facegate.apiKey', {secret!r})")
            page.goto("/#/cameras")
            tile = page.locator('[data-testid="camera"][data-name="Yard"]')
            tile.wait_for(timeout=15_000)
            tile.get_by_test_id("camera-state").filter(has_text="live").wait_for(timeout=60_000)
            handle = tile.element_handle()
            view = until(
                page, "frames on the canvas", lambda: (v := page.evaluate(CANVAS, handle))["frames"] >= 3 and v, 30
            )
            assert view["picture"], view
            screenshot(page, "cameras-keyed")
            # the camera goes away: the badge says down, with the server's error code and detail
            rtsp.stop()
            try:
                tile.get_by_test_id("camera-state").filter(has_text="down").wait_for(timeout=20_000)
                problem = tile.get_by_test_id("camera-error").inner_text()
                assert problem.startswith("source_") and ": " in problem, problem
                assert "camera is down" in tile.inner_text()
            finally:
                rtsp.start()
            tile.get_by_test_id("camera-state").filter(has_text="live").wait_for(timeout=60_000)
            # leaving the page stops the stream
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.get_by_role("link", name="Help").click()
            until(page, "the stream stopped", lambda: any(url.endswith("/stream.mjpg") for url in failed), 10)
        streams = [(url, headers) for url, headers in requests if url.endswith("/stream.mjpg")]
        assert streams, [url for url, _ in requests]
        assert all(headers.get("x-api-key") == secret for _, headers in streams)
        leaked = [url for url, _ in requests if "api_key" in url or secret in url]
        assert leaked == []


def test_more_cameras_than_streams_all_show_their_picture(playwright, service, rtsp):
    # a browser holds at most six connections to a server: beyond three MJPEG streams the page shows
    # snapshots, so every camera has a picture and the page's polls still get through
    ids = []
    try:
        for n in range(5):
            created = httpx.post(f"{service}/v1/cameras", json={"name": f"Cam {n}", "url": rtsp.url(), "fps": 2})
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        with browser_page(playwright, service) as page:
            page.goto("/#/cameras")
            tiles = page.locator('[data-testid="camera"]')
            until(page, "five cameras", lambda: tiles.count() == 5, 60)  # the list refreshes every 2 s; CI is slow
            for n in range(5):
                tile = tiles.nth(n)
                tile.get_by_test_id("camera-state").filter(has_text="live").wait_for(timeout=60_000)
                handle = tile.element_handle()
                until(page, f"a picture from Cam {n}", lambda h=handle: page.evaluate(CANVAS, h)["frames"] >= 2, 60)
            people = page.get_by_test_id("camera-people")
            until(page, "people on every camera", lambda: all(t != "" for t in people.all_inner_texts()), 45)
            screenshot(page, "cameras-five")
    finally:
        for camera_id in ids:
            httpx.delete(f"{service}/v1/cameras/{camera_id}")
