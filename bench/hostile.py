"""Hostile clients against a real server: status, peak memory and CPU per class of attack.

    python bench/hostile.py [--repeat 3] [--only NAME,NAME]

Starts ``facegate serve`` as its own process on loopback (SQLite in a temporary folder,
defaults otherwise), waits for ``/readyz``, then sends every hostile class ``--repeat``
times. Before each class the server's peak-RSS mark is reset (``/proc/PID/clear_refs``);
after it the bench reads the new peak (``VmHWM``) and the CPU time the server spent
(``/proc/PID/stat``), and checks that an ordinary request is still answered. The files are
generated here, in memory.

Per class: ``class=NAME statuses=... peak_mb_over_idle=... peak_mb_over_start=... cpu_s_per_request=...
served_after=...`` (over idle: above the RSS the warmed-up server had before the first class;
over start: above its RSS when this class began, which excludes memory earlier classes left).
Last line: ``hostile_classes=N hostile_5xx=N hostile_max_peak_mb_over_idle=X hostile_max_cpu_s=Y
hostile_rss_growth_mb=Z`` (targets of issue 12: peak < 300 MB over idle and < 2 s CPU for
every class, RSS after all classes <= idle + 100 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import websockets
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "lfw_subset10_krasserm" / "Tony_Blair" / "Tony_Blair_0004.jpg"
TICKS = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------- hostile files


def png_20000x1() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (20000, 1), 128).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def jpeg_with_lying_header(width: int = 20000, height: int = 2500) -> bytes:
    """A real 250x250 JPEG whose frame header claims ``width`` x ``height``."""
    data = bytearray(PHOTO.read_bytes())
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):  # SOF: length, precision, height, width
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise ValueError("no SOF marker")


def progressive_scan_bomb(side: int = 4000, repeats: int = 5000) -> bytes:
    """A progressive JPEG (one flat colour: tiny scans) whose last scan is repeated ``repeats`` times."""
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (120, 130, 140)).save(buf, "JPEG", progressive=True, quality=30)
    data = buf.getvalue()
    scan = data[data.rfind(b"\xff\xda") : -2]
    return data[:-2] + scan * repeats + b"\xff\xd9"


def png_bomb_header() -> bytes:
    """A PNG whose header claims 100000 x 100000 pixels."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF
    data[29:33] = struct.pack(">I", crc)
    return bytes(data)


def bmp_run_length(side: int = 4000) -> bytes:
    """An 8-bit BMP flagged RLE8 whose data is one-pixel runs (Pillow decodes runs in Python)."""
    buf = io.BytesIO()
    Image.new("P", (side, side)).save(buf, "BMP")
    data = bytearray(buf.getvalue())
    offset = struct.unpack_from("<I", data, 10)[0]
    data[30:34] = struct.pack("<I", 1)
    return bytes(data[:offset]) + b"\x01\x07" * (side * side // 2)


def zip_of(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def zip_many_zero_mebibytes(count: int = 1000) -> bytes:
    return zip_of({f"p{i % 10}/{i}.jpg": bytes(1024 * 1024) for i in range(count)})


def zip_lying_entry_size(inflated: int = 1024**3) -> bytes:
    """One deflated entry of ``inflated`` zero bytes whose headers claim 1,000 bytes."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(16 * 1024 * 1024)
    body = b"".join(comp.compress(chunk) for _ in range(inflated // len(chunk))) + comp.flush()
    name = b"Ada/1.jpg"
    crc = 0  # wrong on purpose: a reader must stop on size long before it could check it
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(body), 1000, len(name), 0) + name
    central = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(body), 1000, len(name), 0, 0, 0, 0, 0, 0
        )
        + name
    )
    offset = len(local) + len(body)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), offset, 0)
    return local + body + central + end


def zip_encrypted_flag() -> bytes:
    """A stored entry flagged as encrypted (ZipCrypto) in both headers."""
    data = bytearray(zip_of({"Ada/1.jpg": PHOTO.read_bytes()}, zipfile.ZIP_STORED))
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + flag_at] |= 0x01
    return bytes(data)


def zip_lzma() -> bytes:
    return zip_of({"Ada/1.jpg": PHOTO.read_bytes()}, zipfile.ZIP_LZMA)


def zip_overlapping(copies: int = 500) -> bytes:
    """``copies`` central-directory records that all point at one local file."""
    one = zip_of({"Ada/1.jpg": PHOTO.read_bytes()}, zipfile.ZIP_STORED)
    cd_at = one.find(b"PK\x01\x02")
    end_at = one.find(b"PK\x05\x06")
    record = one[cd_at:end_at]
    central = b"".join(record.replace(b"Ada/1.jpg", f"A{i:03d}/1.jpg".encode()[:9]) for i in range(copies))
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, copies, copies, len(central), cd_at, 0)
    return one[:cd_at] + central + end


def zip_traversal() -> bytes:
    return zip_of({"../../etc/Ada/1.jpg": PHOTO.read_bytes(), "/abs/Bob/1.jpg": PHOTO.read_bytes()})


def deep_json(depth: int = 200_000) -> bytes:
    return b'{"image":' + b"[" * depth + b"]" * depth + b"}"


# ----------------------------------------------------------------- the server


@dataclass
class Server:
    process: subprocess.Popen
    base: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def status(self, key: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def reset_peak(self) -> None:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False


def start_server(tmp: str) -> Server:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "FACEGATE_DATA_DIR": tmp, "FACEGATE_LOG_LEVEL": "warning"}
    process = subprocess.Popen([sys.executable, "-m", "facegate", "serve", "--port", str(port)], env=env)
    server = Server(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.base}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not become ready")


# ----------------------------------------------------------------- the attacks


def outcome(send: Callable[[], httpx.Response]) -> str:
    """``status`` or ``status:code`` of a request, or the client-side error it ended in."""
    try:
        r = send()
    except httpx.HTTPError as exc:
        return f"error:{type(exc).__name__}"
    problem = r.status_code >= 400 and r.headers.get("content-type", "").endswith("json")
    return f"{r.status_code}:{r.json().get('code', '')}" if problem else str(r.status_code)


def post(path: str, content: bytes, media: str, **headers: str) -> Callable[[Server], str]:
    sent = {"content-type": media, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return lambda server: outcome(
        lambda: httpx.post(f"{server.base}{path}", content=content, headers=sent, timeout=120)
    )


def multipart(path: str, field: str, name: str, content: bytes, media: str) -> Callable[[Server], str]:
    return lambda server: outcome(
        lambda: httpx.post(f"{server.base}{path}", files={field: (name, content, media)}, timeout=120)
    )


def stream_frame(frame: bytes | str) -> Callable[[Server], str]:
    async def run(server: Server) -> str:
        url = server.base.replace("http", "ws") + "/v1/stream"
        async with websockets.connect(url, max_size=None) as ws:
            await ws.recv()  # ready
            await ws.send(frame)
            answer = json.loads(await asyncio.wait_for(ws.recv(), 120))
            await ws.send(PHOTO.read_bytes())  # the stream goes on
            after = json.loads(await asyncio.wait_for(ws.recv(), 120))
            return f"ws:{answer.get('code', answer['type'])}+{after['type']}"

    def send(server: Server) -> str:
        try:
            return asyncio.run(run(server))
        except Exception as exc:  # a torn-down stream is a finding, not a crash of the bench
            return f"ws-error:{type(exc).__name__}"

    return send


def chunked_over_limit(megabytes: int = 40) -> Callable[[Server], str]:
    def body():
        chunk = bytes(1024 * 1024)
        for _ in range(megabytes):
            yield chunk

    def send(server: Server) -> str:
        headers = {"content-type": "image/jpeg"}
        return outcome(lambda: httpx.post(f"{server.base}/v1/recognize", content=body(), headers=headers, timeout=120))

    return send


def huge_header(megabytes: int = 8) -> Callable[[Server], str]:
    def send(server: Server) -> str:
        host, port = server.base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as s:
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (megabytes << 20) + b"\r\n\r\n")
                return s.recv(64).split(b"\r\n")[0].decode(errors="replace") or "closed"
            except OSError as exc:
                return f"closed:{type(exc).__name__}"

    return send


def slow_clients(count: int = 50, seconds: float = 15.0) -> Callable[[Server], str]:
    def send(server: Server) -> str:
        host, port = server.base.removeprefix("http://").split(":")
        sockets = []
        for _ in range(count):
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            sockets.append(s)
        deadline = time.monotonic() + seconds
        closed = 0
        while time.monotonic() < deadline:
            for s in list(sockets):
                try:
                    s.sendall(b"X: 1\r\n")
                except OSError:
                    closed += 1
                    sockets.remove(s)
            time.sleep(0.5)
        bystander = server.answers()
        for s in sockets:
            s.close()
        return f"closed_by_server={closed}/{count} bystander_served={bystander}"

    return send


def attacks() -> dict[str, Callable[[Server], str]]:
    png = png_20000x1()
    lying = jpeg_with_lying_header()
    bomb = progressive_scan_bomb()
    deep = deep_json()
    zip_media = "application/zip"
    return {
        "png_20000x1_detect": post("/v1/detect", png, "image/png"),
        "png_20000x1_recognize": post("/v1/recognize", png, "image/png"),
        "png_20000x1_stream": stream_frame(png),
        "jpeg_lying_header_detect": post("/v1/detect", lying, "image/jpeg"),
        "jpeg_lying_header_recognize": post("/v1/recognize", lying, "image/jpeg"),
        # claims 250x375: under the scan-length bound of check_jpeg, refused by the strict decoder
        "jpeg_lying_header_1_5x": post("/v1/recognize", jpeg_with_lying_header(250, 375), "image/jpeg"),
        "jpeg_progressive_scan_bomb": post("/v1/detect", bomb, "image/jpeg"),
        "png_bomb_header": post("/v1/recognize", png_bomb_header(), "image/png"),
        "bmp_run_length": post("/v1/recognize", bmp_run_length(), "image/bmp"),
        "truncated_jpeg": post("/v1/recognize", PHOTO.read_bytes()[:4000], "image/jpeg"),
        "random_bytes": post("/v1/recognize", os.urandom(100_000), "image/jpeg"),
        "zip_1000_zero_mebibytes": post("/v1/enroll/zip", zip_many_zero_mebibytes(), zip_media),
        "zip_lying_entry_size": post("/v1/enroll/zip", zip_lying_entry_size(), zip_media),
        "zip_encrypted_entry": post("/v1/enroll/zip", zip_encrypted_flag(), zip_media),
        "zip_lzma_entry": post("/v1/enroll/zip", zip_lzma(), zip_media),
        "zip_overlapping_entries": post("/v1/enroll/zip", zip_overlapping(), zip_media),
        "zip_progressive_scan_bomb": post("/v1/enroll/zip", zip_of({"Ada/1.jpg": bomb}), zip_media),
        "zip_traversal": post("/v1/enroll/zip", zip_traversal(), zip_media),
        "json_200000_deep": post("/v1/recognize", deep, "application/json"),
        "json_200000_deep_stream": stream_frame(deep.decode()),
        "chunked_over_limit": chunked_over_limit(),
        "header_8mb": huge_header(),
        "slow_clients": slow_clients(),
        "cross_site_write": post(
            "/v1/people", b'{"name": "Mallory"}', "application/json", origin="http://evil.example"
        ),
        "dns_rebinding_host": post("/v1/people", b'{"name": "Mallory"}', "application/json", host="attacker.example"),
        "multipart_png_20000x1_faces": multipart("/v1/detect", "image", "x.png", png, "image/png"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated class names")
    args = ap.parse_args()
    classes = attacks()
    if args.only:
        classes = {k: v for k, v in classes.items() if k in args.only.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(tmp)
        try:
            post("/v1/recognize", PHOTO.read_bytes(), "image/jpeg")(server)  # warm
            idle = server.status("VmRSS")
            print(f"server pid={server.pid} idle_rss_mb={idle:.0f}", flush=True)
            worst_peak = worst_cpu = 0.0
            fivexx = 0
            for name, attack in classes.items():
                server.reset_peak()
                start, cpu = server.status("VmRSS"), server.cpu_s()
                statuses = [attack(server) for _ in range(args.repeat)]
                cpu_per = (server.cpu_s() - cpu) / args.repeat
                high = server.status("VmHWM")
                peak = high - idle
                served = server.answers()
                fivexx += sum(s.startswith("5") for s in statuses) + (not served)
                worst_peak, worst_cpu = max(worst_peak, peak), max(worst_cpu, cpu_per)
                shown = ",".join(sorted(set(statuses)))
                print(
                    f"class={name} statuses={shown} peak_mb_over_idle={peak:.0f} peak_mb_over_start={high - start:.0f} "
                    f"cpu_s_per_request={cpu_per:.2f} served_after={served}",
                    flush=True,
                )
            growth = server.status("VmRSS") - idle
        finally:
            server.process.terminate()
            server.process.wait(timeout=30)
    print(
        f"hostile_classes={len(classes)} hostile_5xx={fivexx} hostile_max_peak_mb_over_idle={worst_peak:.0f} "
        f"hostile_max_cpu_s={worst_cpu:.2f} hostile_rss_growth_mb={growth:.0f}"
    )


if __name__ == "__main__":
    main()
