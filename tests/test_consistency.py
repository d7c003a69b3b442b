"""One configuration, one decision: the CLI and the server agree, with flip on and off.

People enrolled through the CLI are recognised by the running server (and the reverse)
with the same confidence; ``/v1/recognize``, ``/v1/verify``, the stream and ``facegate
identify``/``verify`` report the same confidence for the same face; a server started with
other embedding settings than the templates refuses with ``model_mismatch``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
import pytest
import websockets

from api_server import files, free_port, running_server
from conftest import photos
from facegate.config import Settings
from test_cli import facegate

PROBE_A = photos("Colin_Powell")[3]
PROBE_B = photos("Tony_Blair")[3]


def cli(flip: bool, *args: str, check: bool = True):
    """``facegate`` with FACEGATE_FLIP set as the server's setting is."""
    os.environ["FACEGATE_FLIP"] = "1" if flip else "0"
    try:
        return facegate(*args, check=check)
    finally:
        del os.environ["FACEGATE_FLIP"]


def recognised(client: httpx.Client, probe) -> dict:
    """The server's decision on a probe's face, once the index has caught up with other writers."""
    deadline = time.monotonic() + 10
    while True:
        answer = client.post("/v1/recognize", files=files(probe, field="image"))
        assert answer.status_code == 200, answer.text
        decision = answer.json()["faces"][0]["decision"]
        if decision["status"] == "match" or time.monotonic() > deadline:
            return decision
        time.sleep(0.2)


def streamed(base: str, probe) -> dict:
    async def run() -> dict:
        async with websockets.connect(base.replace("http", "ws") + "/v1/stream") as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(probe.read_bytes())
            return json.loads(await ws.recv())["faces"][0]["decision"]

    return asyncio.run(run())


@pytest.mark.parametrize("flip", [False, True], ids=["plain", "flip"])
def test_cli_and_server_agree(flip, tmp_path, engine):
    url = f"sqlite:///{tmp_path / 'facegate.db'}"
    cli(flip, "enroll", "Colin", *map(str, photos("Colin_Powell")[:3]), "--db", url)
    settings = Settings().with_values(port=free_port(), database_url=url, flip=flip)
    with running_server(settings), httpx.Client(base_url=f"http://127.0.0.1:{settings.server.port}", timeout=60) as c:
        info = c.get("/v1/info").json()
        assert info["flip"] is flip and info["model_id"].endswith("+flip") is flip
        # enrolled by the CLI, recognised by the server
        by_server = recognised(c, PROBE_A)
        by_cli = json.loads(cli(flip, "identify", str(PROBE_A), "--db", url, "--json").stdout)["faces"][0]
        assert by_server["name"] == by_cli["name"] == "Colin"
        assert by_server["confidence"] == pytest.approx(by_cli["confidence"], abs=2e-4)
        assert by_server["similarity"] == pytest.approx(by_cli["similarity"], abs=2e-4)
        # the stream decides as /v1/recognize does
        # (stream messages leave out empty fields: a match's reason is null)
        assert streamed(str(c.base_url), PROBE_A) == {k: v for k, v in by_server.items() if v is not None}
        # enrolled by the server, recognised by the CLI
        tony = c.post("/v1/people", json={"name": "Tony"}).json()["id"]
        assert c.post(f"/v1/people/{tony}/faces", files=files(*photos("Tony_Blair")[:3])).status_code == 201
        by_cli_b = json.loads(cli(flip, "identify", str(PROBE_B), "--db", url, "--json").stdout)["faces"][0]
        by_server = recognised(c, PROBE_B)
        assert by_server["name"] == by_cli_b["name"] == "Tony"
        assert by_server["confidence"] == pytest.approx(by_cli_b["confidence"], abs=2e-4)
        # verify: two images, and an image against the enrolled person, as the CLI verifies
        a, b = photos("Tony_Blair")[:2]
        by_server = c.post("/v1/verify", files=files(a, field="image_a") + files(b, field="image_b")).json()
        by_cli = json.loads(cli(flip, "verify", str(a), str(b), "--json").stdout)
        assert by_server["same"] is by_cli["same"] is True
        assert by_server["confidence"] == pytest.approx(by_cli["confidence"], abs=2e-4)
        assert by_server["threshold"] == by_cli["threshold"] == info["threshold"]
        to_person = c.post(f"/v1/verify?person_id={tony}", files=files(PROBE_B, field="image_a")).json()
        assert to_person["same"] is True and to_person["similarity"] == by_cli_b["similarity"]


def test_other_embedding_settings_are_refused_not_searched_empty(tmp_path, engine):
    url = f"sqlite:///{tmp_path / 'facegate.db'}"
    cli(False, "enroll", "Colin", *map(str, photos("Colin_Powell")[:3]), "--db", url)
    settings = Settings().with_values(port=free_port(), database_url=url, flip=True)
    with running_server(settings), httpx.Client(base_url=f"http://127.0.0.1:{settings.server.port}", timeout=60) as c:
        answer = c.post("/v1/recognize", files=files(PROBE_A, field="image"))
        assert answer.status_code == 409 and answer.json()["code"] == "model_mismatch"
        assert "dlib_resnet_v1+flip" in answer.json()["detail"] and "flip" in answer.json()["detail"]
        colin = c.get("/v1/people").json()["items"][0]["id"]
        added = c.post(f"/v1/people/{colin}/faces", files=files(photos("Colin_Powell")[3]))
        assert added.status_code == 409 and added.json()["code"] == "model_mismatch"  # nothing mixed in
    refused = cli(True, "enroll", "Colin", str(photos("Colin_Powell")[3]), "--db", url, check=False)
    assert refused.returncode == 2 and "model_mismatch" in refused.stderr
    assert "1 people, 3 templates" in cli(False, "people", "--db", url).stdout


def test_collections_from_the_cli_are_seen_by_a_running_server(tmp_path, engine):
    url = f"sqlite:///{tmp_path / 'facegate.db'}"
    cli(False, "collections", "create", "office", "--db", url)
    cli(False, "enroll", "Colin", *map(str, photos("Colin_Powell")[:3]), "--db", url, "--collection", "office")
    settings = Settings().with_values(port=free_port(), database_url=url)
    with running_server(settings), httpx.Client(base_url=f"http://127.0.0.1:{settings.server.port}", timeout=60) as c:
        assert [x["name"] for x in c.get("/v1/collections").json()] == ["default", "office"]
        probe = files(PROBE_A, field="image")
        assert c.post("/v1/recognize?collection=office", files=probe).json()["faces"][0]["decision"]["name"] == "Colin"
        assert (
            "renamed collection 'office' to 'staff'"
            in cli(False, "collections", "rename", "office", "staff", "--db", url).stdout
        )
        deadline = time.monotonic() + 10
        while (old := c.post("/v1/recognize?collection=office", files=probe)).status_code == 200:
            assert time.monotonic() < deadline, "the server kept serving a renamed collection"
            time.sleep(0.2)
        assert old.status_code == 404 and old.json()["code"] == "collection_not_found"
        assert c.post("/v1/recognize?collection=staff", files=probe).json()["faces"][0]["decision"]["name"] == "Colin"
        refused = cli(False, "collections", "delete", "staff", "--db", url, check=False)  # no --yes, no terminal
        assert refused.returncode != 0 and "staff" in cli(False, "collections", "list", "--db", url).stdout
        assert (
            "deleted collection 'staff' (1 people)"
            in cli(False, "collections", "delete", "staff", "--yes", "--db", url).stdout
        )
        gone = c.post("/v1/recognize?collection=staff", files=probe)
        deadline = time.monotonic() + 10
        while gone.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            gone = c.post("/v1/recognize?collection=staff", files=probe)
        assert gone.status_code == 404
