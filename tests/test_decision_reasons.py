"""The decision's reason codes reach REST and WebSocket clients (a real server on loopback)."""

from __future__ import annotations

import asyncio
import json

import cv2
import httpx
import pytest
import websockets

from api_server import files, served
from conftest import STRANGER, photos


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine):
    with served(tmp_path_factory, engine, "reasons") as base:
        with httpx.Client(base_url=base, timeout=60) as client:
            pid = client.post("/v1/people", json={"name": "Tony"}).json()["id"]
            added = client.post(f"/v1/people/{pid}/faces", files=files(*photos("Tony_Blair")[1:3]))
            assert added.status_code == 201, added.text
        yield base


def tiny_probe() -> bytes:
    """Tony Blair's fourth photo at a fifth of its size: his face is about 25 px wide."""
    image = cv2.imread(str(photos("Tony_Blair")[3]))
    small = cv2.resize(image, (image.shape[1] // 5, image.shape[0] // 5), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", small)[1].tobytes()


def test_rest_results_carry_the_reason_and_the_threshold(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        named = client.post("/v1/recognize", files=files(photos("Tony_Blair")[3], field="image")).json()
        decision = named["faces"][0]["decision"]
        assert decision["status"] == "match" and decision["reason"] is None
        assert decision["similarity"] >= decision["threshold"] and 0.5 < decision["confidence"] <= 1.0
        stranger = client.post("/v1/recognize", files=files(STRANGER, field="image")).json()
        assert stranger["faces"][0]["decision"]["status"] == "unknown"
        assert stranger["faces"][0]["decision"]["reason"] == "no_match"
        tiny = client.post("/v1/recognize", files=[("image", ("tiny.jpg", tiny_probe(), "image/jpeg"))]).json()
        assert tiny["faces"], "the small face is found"
        assert tiny["faces"][0]["decision"] == {
            **tiny["faces"][0]["decision"],
            "status": "unknown",
            "reason": "too_small",
        }
        assert tiny["faces"][0]["quality"]["size"] < 32


def test_stream_results_carry_the_reason(server):
    async def run() -> list[dict]:
        async with websockets.connect(server.replace("http", "ws") + "/v1/stream") as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            answers = []
            for frame in (STRANGER.read_bytes(), STRANGER.read_bytes(), STRANGER.read_bytes()):
                await ws.send(frame)
                answers.append(json.loads(await ws.recv()))
            return answers

    answers = asyncio.run(run())
    frame_reasons = [a["faces"][0]["decision"]["reason"] for a in answers if a["faces"][0].get("decision")]
    assert frame_reasons and set(frame_reasons) == {"no_match"}
    last = answers[-1]["faces"][0]["track"]
    assert last["status"] == "unknown" and last["reason"] == "no_match"
