"""The Enrol page keeps an enrolment to one person: Debian's Chromium (headless, Playwright) against a
real server on loopback, the webcam faked with a clip of two people (``web_clips.two_people``).

Required when ``CI=true``; elsewhere it skips when Playwright or Chromium is missing (as tests/test_web.py).
"""

from __future__ import annotations

import httpx
import pytest

from api_server import files, served
from conftest import photos
from test_web import browser_page, screenshot
from web_clips import two_people, write_clip

ANOTHER_PERSON = "Another person came into view — capture stopped; start again with one person"


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine):
    with served(tmp_path_factory, engine, "web-enrol") as base:
        yield base


@pytest.fixture(scope="module")
def api(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


def test_guided_capture_of_two_people_is_refused(playwright, server, api, tmp_path):
    # Colin Powell looking straight ahead, then Tony Blair turned a little: two people in one series
    colin, tony = photos("Colin_Powell")[1], photos("Tony_Blair")[3]
    clip = write_clip(tmp_path / "two.y4m", two_people(colin, tony))
    with browser_page(playwright, server, clip) as page:
        page.goto("/#/enrol")
        page.get_by_label("Name", exact=True).first.fill("Colin Powell")
        page.get_by_role("button", name="Start camera").click()
        stopped = page.locator("#capture-stopped")
        stopped.wait_for(timeout=120_000)
        assert stopped.inner_text() == ANOTHER_PERSON
        assert stopped.get_attribute("role") == "alert"
        assert page.locator("#save-person").count() == 0  # no review, nothing to save
        screenshot(page, "enrol-two-people")
        page.get_by_role("button", name="Start again").click()
        page.get_by_role("button", name="Start camera").wait_for()  # back to the start, camera closed
    assert api.get("/v1/people").json()["total"] == 0


def test_saving_a_lookalike_warns_on_the_page(playwright, server, api):
    pid = api.post("/v1/people", json={"name": "Colin"}).json()["id"]
    api.post(f"/v1/people/{pid}/faces", files=files(*photos("Colin_Powell")[:2])).raise_for_status()
    with browser_page(playwright, server) as page:
        page.goto("/#/enrol")
        page.locator("#photo-name").fill("General Powell")
        page.locator("#photo-files").set_input_files([str(p) for p in photos("Colin_Powell")[2:]])
        page.locator("#photo-submit").click()
        page.locator("#photo-done").wait_for(timeout=60_000)
        report = page.locator("#photo-report [data-testid=distinctness]")
        assert "Closest other person: Colin (similarity 0.9" in report.inner_text()
        warning = report.locator("[data-code=similar_person]")
        assert warning.count() == 1 and "Colin" in warning.inner_text()
        screenshot(page, "enrol-lookalike")

        # a clearly different person: the closest one is named, without a warning
        page.locator("#photo-name").fill("Tony")
        page.locator("#photo-files").set_input_files([str(p) for p in photos("Tony_Blair")[1:3]])
        page.locator("#photo-submit").click()
        page.get_by_text("Tony is enrolled").wait_for(timeout=60_000)
        assert "clearly distinct" in report.inner_text() and report.locator("[data-code]").count() == 0
