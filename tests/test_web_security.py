"""Browser-facing defaults (issue 12) against a real server on loopback: security headers, the Host
allow-list, cross-site writes and streams refused, keys out of URLs and logs, revoked keys close
streams, and a page of another origin in Chromium that can neither write nor read names."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.server
import io
import json
import logging
import threading
import zipfile

import httpx
import pytest
import uvicorn
import websockets

from api_server import files, free_port, running_server
from conftest import photos
from facegate.api.app import create_app
from facegate.api.server import uvicorn_config
from facegate.config import Settings

FOREIGN = "http://evil.example"
HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{tmp_path_factory.mktemp('sec')}/f.db")
    with running_server(settings) as app:
        yield app, f"http://127.0.0.1:{settings.server.port}"


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server[1], timeout=60) as c:
        yield c


@pytest.fixture()
def keyed(tmp_path):
    """A server that requires keys, with an admin key: (app, base URL, admin secret)."""
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{tmp_path / 'k.db'}", auth="required")
    with running_server(settings) as app:
        yield app, f"http://127.0.0.1:{settings.server.port}", app.state.runtime.keys.create("t", ["admin"]).secret


def assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def assert_secured(response) -> None:
    missing = [h for h in HEADERS if h not in response.headers]
    assert not missing, f"{response.request.url.path} lacks {missing}"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


# ----------------------------------------------------------------- headers


def test_security_headers_on_json_chip_ui_docs_and_errors(client):
    person = client.post("/v1/people", json={"name": "Headers"}).json()
    added = client.post(f"/v1/people/{person['id']}/faces", files=files(photos("Tony_Blair")[0]))
    assert added.status_code == 201, added.text
    faces = client.get(f"/v1/people/{person['id']}/faces").json()
    template = faces[0] if isinstance(faces, list) else faces["items"][0]
    chip = client.get(template["chip_url"])
    assert chip.headers["content-type"] == "image/jpeg"
    for response in (
        client.get("/v1/people"),
        chip,
        client.get("/"),
        client.get("/ui/app.js"),
        client.get("/docs"),
        client.get("/docs/assets/swagger-ui-bundle.js"),
        client.get("/openapi.json"),
        client.get("/v1/people/p_nobody"),  # a problem document
    ):
        assert_secured(response)
    docs_csp = client.get("/docs").headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in docs_csp and "unsafe-eval" not in docs_csp


# ----------------------------------------------------------------- Host allow-list


def test_a_wrong_host_is_refused_and_loopback_names_are_served(server, client):
    port = server[1].rsplit(":", 1)[1]
    for host in ("rebind.evil.example", f"rebind.evil.example:{port}", "10.0.0.1"):
        assert_problem(client.get("/v1/people", headers={"Host": host}), 421, "host_not_allowed")
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
        assert client.get("/v1/people", headers={"Host": host}).status_code == 200


def test_host_policy_beyond_loopback():
    from facegate.api.security import HostPolicy

    beyond = Settings().with_values(host="0.0.0.0", allowed_hosts=("faces.example.org",))
    assert HostPolicy.of(beyond).allows("faces.example.org:8000")
    assert HostPolicy.of(beyond).allows("localhost:8000")
    assert not HostPolicy.of(beyond).allows("evil.example")
    assert HostPolicy.of(Settings().with_values(host="0.0.0.0")).allows("anything")  # none named: any, warned


# ----------------------------------------------------------------- cross-site writes


def test_cross_site_writes_are_refused_and_same_origin_works(server, client):
    before = client.get("/v1/people").json()["total"]
    assert_problem(
        client.post("/v1/people", json={"name": "Mallory"}, headers={"Origin": FOREIGN}), 403, "cross_site_request"
    )
    assert_problem(
        client.post("/v1/people", json={"name": "Mallory"}, headers={"Origin": "null"}), 403, "cross_site_request"
    )
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert_problem(client.post("/v1/people", json={"name": "Mallory"}, headers=cross), 403, "cross_site_request")
    assert client.get("/v1/people").json()["total"] == before
    own = {"Origin": server[1], "Sec-Fetch-Site": "same-origin"}
    assert client.post("/v1/people", json={"name": "Own Origin"}, headers=own).status_code == 201
    assert client.post("/v1/people", json={"name": "No Browser"}).status_code == 201  # no Origin: not a browser
    assert client.get("/v1/people", headers={"Origin": FOREIGN}).status_code == 200  # reads stay CORS's business


def test_origins_named_in_cors_origins_may_write(tmp_path):
    app_origin = "http://app.example"
    db = f"sqlite:///{tmp_path / 'c.db'}"
    settings = Settings().with_values(port=free_port(), database_url=db, cors_origins=(app_origin,))
    with running_server(settings), httpx.Client(base_url=f"http://127.0.0.1:{settings.server.port}") as c:
        named = c.post("/v1/people", json={"name": "Via CORS"}, headers={"Origin": app_origin})
        assert named.status_code == 201 and named.headers["access-control-allow-origin"] == app_origin
        refused = c.post("/v1/people", json={"name": "Other"}, headers={"Origin": FOREIGN})
        assert_problem(refused, 403, "cross_site_request")
        assert_secured(refused)


def test_a_websocket_from_another_origin_is_refused(server):
    url = server[1].replace("http", "ws") + "/v1/stream"

    async def first(origin: str | None) -> str:
        async with websockets.connect(url, origin=origin) as ws:
            return json.loads(await ws.recv())["type"]

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(first(FOREIGN))
    assert refused.value.response.status_code == 403
    assert asyncio.run(first(server[1])) == "ready"
    assert asyncio.run(first(None)) == "ready"


# ----------------------------------------------------------------- keys


def test_metrics_and_info_need_a_key_when_keys_are_required(keyed):
    _, base, secret = keyed
    with httpx.Client(base_url=base, timeout=60) as c:
        assert_problem(c.get("/metrics"), 401, "unauthorized")
        assert_problem(c.get("/v1/info"), 401, "unauthorized")
        as_key = {"Authorization": f"Bearer {secret}"}
        assert "facegate_" in c.get("/metrics", headers=as_key).text
        assert c.get("/v1/info", headers=as_key).json()["auth_required"] is True
        assert c.get("/healthz").status_code == 200


@pytest.mark.parametrize("sent_as", ["subprotocol", "header"])
def test_a_stream_closes_when_its_key_is_revoked(keyed, sent_as):
    app, base, admin = keyed
    created = app.state.runtime.keys.create("kiosk", ["recognize"])
    url = base.replace("http", "ws") + "/v1/stream"
    if sent_as == "subprotocol":  # how browsers send it
        how = {"subprotocols": ["facegate", f"facegate.key.{created.secret}"]}
    else:
        how = {"additional_headers": {"X-API-Key": created.secret}}

    async def scenario() -> tuple[str, str | None, dict, int]:
        async with websockets.connect(url, **how) as ws:
            ready = json.loads(await ws.recv())["type"]
            async with httpx.AsyncClient(base_url=base, timeout=60) as c:
                revoked = await c.delete(f"/v1/keys/{created.key.id}", headers={"X-API-Key": admin})
                assert revoked.status_code == 200
            # a hang guard, not a timing assertion: the stream must close by itself
            error = json.loads(await asyncio.wait_for(ws.recv(), 30))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 30)
            return ready, ws.subprotocol, error, ws.close_code

    ready, subprotocol, error, code = asyncio.run(scenario())
    assert ready == "ready" and subprotocol == ("facegate" if sent_as == "subprotocol" else None)  # key not echoed
    assert error["code"] == "key_revoked" and code == 4401


def test_the_access_log_has_no_key_or_reference_in_clear(tmp_path):
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{tmp_path / 'l.db'}", auth="required")
    app = create_app(settings, warm=False)
    server = uvicorn.Server(uvicorn_config(app, settings, log_level="info"))
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addHandler(handler)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive()
            thread.join(0.05)
        secret = app.state.runtime.keys.create("t", ["admin"]).secret
        base = f"http://127.0.0.1:{settings.server.port}"
        with httpx.Client(base_url=base, timeout=60) as c:
            c.get("/v1/people/by-ref", params={"ref": "employee-4711", "api_key": secret})

        async def stream() -> None:
            async with websockets.connect(f"{base.replace('http', 'ws')}/v1/stream?api_key={secret}") as ws:
                await ws.recv()

        asyncio.run(stream())
    finally:
        server.should_exit = True
        thread.join(30)
        for name in ("uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).removeHandler(handler)
    logged = "\n".join(lines)
    assert "/v1/people/by-ref" in logged and "/v1/stream" in logged  # the lines are there
    assert secret not in logged and "employee-4711" not in logged, logged
    assert "api_key=***" in logged and "ref=***" in logged


# ----------------------------------------------------------------- a page of another origin, in Chromium


EVIL_PAGE = b"""<!doctype html><html><body>
<form id="f" method="post" enctype="multipart/form-data" target="sink"><input type="file" name="archive" id="a"></form>
<iframe name="sink"></iframe></body></html>"""

ATTACK = """async ([target, zipBase64]) => {
  const bytes = Uint8Array.from(atob(zipBase64), (c) => c.charCodeAt(0));
  const zip = () => new File([bytes], "people.zip", { type: "application/zip" });
  const out = {};
  // 1. a plain HTML form POST of a ZIP (no preflight), into an iframe
  const dt = new DataTransfer();
  dt.items.add(zip());
  const input = document.getElementById("a");
  input.files = dt.files;
  const form = document.getElementById("f");
  form.action = target + "/v1/enroll/zip";
  const sink = document.querySelector("iframe");
  const loaded = new Promise((resolve) => sink.addEventListener("load", resolve, { once: true }));
  form.submit();
  await loaded;
  // 2. fetch without CORS (an opaque answer, but the write would happen)
  const body = new FormData();
  body.append("archive", zip());
  try {
    await fetch(target + "/v1/enroll/zip", { method: "POST", mode: "no-cors", body });
    out.fetch = "sent";
  } catch (e) {
    out.fetch = "failed";
  }
  // 3. reading names: CORS forbids it
  try { out.read = await (await fetch(target + "/v1/people")).text(); } catch (e) { out.read = null; }
  // 4. the stream
  out.ws = await new Promise((resolve) => {
    const messages = [];
    const ws = new WebSocket(target.replace("http", "ws") + "/v1/stream");
    ws.onmessage = (event) => messages.push(event.data);
    ws.onclose = () => resolve(messages);
    setTimeout(() => { ws.close(); resolve(messages); }, 20000);
  });
  return out;
}"""


@contextlib.contextmanager
def other_origin():
    """A second tiny HTTP server on another loopback port that serves the attacker's page."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(EVIL_PAGE)))
            self.end_headers()
            self.wfile.write(EVIL_PAGE)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_page_of_another_origin_can_neither_write_nor_read_names(tmp_path, engine):
    from test_web import BROWSER_ARGS, CHROMIUM, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    engine.warmup()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.write(photos("Tony_Blair")[0], "Mallory/1.jpg")
    archive = base64.b64encode(buffer.getvalue()).decode()
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{tmp_path / 'x.db'}")
    target = f"http://127.0.0.1:{settings.server.port}"
    with (
        running_server(settings),
        other_origin() as evil,
        sync_playwright() as p,
        httpx.Client(base_url=target, timeout=120) as api,
    ):
        api.post("/v1/people", json={"name": "Secret Name"})
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.goto(evil)
            out = page.evaluate(ATTACK, [target, archive])
        finally:
            browser.close()
        names = [person["name"] for person in api.get("/v1/people").json()["items"]]
        assert names == ["Secret Name"], f"a page of another origin wrote: {names}"
        assert out["read"] is None  # CORS keeps the answer from the page
        assert not out["ws"], f"the stream talked to another origin: {out['ws']}"


STREAM_FROM_PAGE = """async () => {
  const { streamProtocols, streamUrl } = await import("/ui/api.js");
  return await new Promise((resolve) => {
    const ws = new WebSocket(streamUrl(), streamProtocols());
    ws.onmessage = (event) => { resolve([JSON.parse(event.data).type, ws.protocol]); ws.close(); };
    ws.onclose = (event) => resolve(["closed", event.code]);
  });
}"""


@pytest.mark.parametrize("auth", ["off", "required"])
def test_the_ui_and_docs_work_on_their_own_origin_under_their_csp(tmp_path, engine, auth):
    from test_web import BROWSER_ARGS, CHROMIUM, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{tmp_path / 'o.db'}", auth=auth)
    base = f"http://127.0.0.1:{settings.server.port}"
    with running_server(settings) as app, sync_playwright() as p:
        secret = app.state.runtime.keys.create("ui", ["admin"]).secret
        headers = {"X-API-Key": secret} if auth == "required" else {}
        httpx.post(f"{base}/v1/people", json={"name": "Own Origin"}, headers=headers, timeout=60)
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_context(base_url=base).new_page()  # the CSPs are enforced
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            page.on("pageerror", lambda exc: console.append(str(exc)))
            page.goto("/#/people")
            if auth == "required":
                dialog = page.get_by_role("dialog", name="API key")
                dialog.get_by_label("Key").fill(secret)
                dialog.get_by_role("button", name="Save").click()
            page.get_by_text("Own Origin").first.wait_for()
            assert page.evaluate(STREAM_FROM_PAGE) == ["ready", "facegate"]
            page.goto("/docs")
            page.locator(".opblock").first.wait_for(timeout=30_000)
            violations = [m for m in console if "Content Security Policy" in m or "Refused" in m]
            assert not violations, violations
        finally:
            browser.close()
