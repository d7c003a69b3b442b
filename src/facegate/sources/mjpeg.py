"""HTTP(S) MJPEG cameras: a ``multipart/x-mixed-replace`` stream parsed with the stdlib.

Each part goes through :func:`facegate.vision.image.decode_image`, so the limits that apply
to uploads (bytes, pixels, JPEG scans) apply to every camera frame too. Parts may carry a
``Content-Length`` (read exactly) or not (read up to the next boundary line). A part over
``limits.max_bytes`` is refused without buffering more than the limit; a part that is not an
image is skipped and counted (``skipped``, ``last_error`` holds its code), and
``max_bad_parts`` bad parts in a row end the stream with ``source_decode_failed``. Every socket
read waits at most ``timeout_s`` and one part at most ``max_part_s`` (a trickling server).

Credentials in the URL (``http://user:pass@host/…``) are sent as HTTP Basic auth and never
appear in a message.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from facegate.core.urls import redact_url
from facegate.sources.base import SourceError, SourceFrame, SourceInfo
from facegate.vision.errors import ImageError
from facegate.vision.image import DEFAULT_LIMITS, ImageLimits, decode_image

LINE_LIMIT = 64 * 1024  # one readline() never returns more
MAX_HEADER_BYTES = 16 * 1024  # the headers of one part
DISCARD_FACTOR = 4  # bytes discarded while looking for a boundary: at most this many times max_bytes
_CHUNK = 64 * 1024


class MjpegSource:
    """Frames of an HTTP ``multipart/x-mixed-replace`` stream (a live source)."""

    def __init__(
        self,
        url: str,
        limits: ImageLimits = DEFAULT_LIMITS,
        timeout_s: float = 5.0,
        *,
        max_bad_parts: int = 10,
        max_part_s: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise SourceError(f"not an http(s) URL: {redact_url(url)}", code="invalid_camera_url")
        if not timeout_s > 0 or max_bad_parts < 1:
            raise ValueError("timeout_s must be positive and max_bad_parts at least 1")
        self.url = url
        self.limits = limits
        self.timeout_s = float(timeout_s)
        self.max_bad_parts = max_bad_parts
        self.max_part_s = float(max_part_s)  # one part, headers to end: a trickling server times out
        self._deadline: float | None = None
        self._buf = bytearray()
        self.tls_context = tls_context
        self.skipped = 0  # parts that were not decodable images (or too big)
        self.last_error: str | None = None  # the code of the last skipped part
        self._bad_in_row = 0
        self._index = 0
        self._conn: http.client.HTTPConnection | None = None
        self._resp: http.client.HTTPResponse | None = None
        self._delimiters: tuple[bytes, ...] = ()
        self._at_part = False  # the delimiter line before the next part was already read
        self._ended = False

    def __repr__(self) -> str:
        return f"MjpegSource({redact_url(self.url)!r})"

    # ------------------------------------------------------------------ errors

    def _fail(self, code: str, what: str) -> SourceError:
        return SourceError(f"{what}: {redact_url(self.url)}", code=code)

    def _io_error(self, exc: BaseException, *, opening: bool) -> SourceError:
        if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
            return self._fail("source_timeout", f"no answer within {self.timeout_s:g} s")
        if isinstance(exc, socket.gaierror):
            return self._fail("source_unreachable", "unknown host")
        if isinstance(exc, ssl.SSLError):
            return self._fail("source_unreachable", f"TLS failed ({type(exc).__name__})")
        if isinstance(exc, ConnectionRefusedError):
            return self._fail("source_unreachable", "connection refused")
        if isinstance(exc, http.client.HTTPException):
            return self._fail("source_unsupported" if opening else "source_ended", "not a valid HTTP response")
        if opening:
            return self._fail("source_unreachable", f"cannot connect ({type(exc).__name__})")
        return self._fail("source_ended", f"the stream broke off ({type(exc).__name__})")

    # ------------------------------------------------------------------ open

    def open(self) -> SourceInfo:
        self.close()
        parts = urlsplit(self.url)
        secure = parts.scheme.lower() == "https"
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if secure else 80)
        except ValueError:
            raise self._fail("invalid_camera_url", "bad port") from None
        conn: http.client.HTTPConnection
        if secure:
            context = self.tls_context or ssl.create_default_context()
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout_s, context=context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout_s)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Accept": "multipart/x-mixed-replace, image/jpeg", "User-Agent": "facegate", "Connection": "close"}
        if parts.username is not None:
            token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
        self._conn = conn
        try:
            conn.request("GET", target, headers=headers)
            resp = conn.getresponse()
        except Exception as exc:
            self.close()
            raise self._io_error(exc, opening=True) from None
        self._resp = resp
        try:
            self._check_response(resp)
        except BaseException:
            self.close()
            raise
        self._at_part = False
        self._ended = False
        self._bad_in_row = 0
        self._index = 0
        self._buf.clear()
        return SourceInfo(fps=None, width=None, height=None, live=True)

    def _check_response(self, resp: http.client.HTTPResponse) -> None:
        status = resp.status
        if status in (401, 403):
            raise self._fail("source_unauthorized", f"HTTP {status}: access refused")
        if status in (404, 410):
            raise self._fail("source_not_found", f"HTTP {status}: no such stream")
        if status != 200:
            raise self._fail("source_unreachable", f"HTTP {status}")
        ctype = resp.headers.get_content_type()
        if ctype != "multipart/x-mixed-replace":
            raise self._fail("source_unsupported", f"the content type is {ctype}, not multipart/x-mixed-replace")
        boundary = resp.headers.get_param("boundary")
        if not isinstance(boundary, str) or not boundary.strip() or len(boundary) > 200:
            raise self._fail("source_unsupported", "the multipart stream names no boundary")
        token = boundary.strip().encode("latin-1", "replace")
        # some cameras put the dashes into the parameter (boundary=--frame) and then send it as is
        self._delimiters = (b"--" + token, token) if token.startswith(b"--") else (b"--" + token,)

    # ------------------------------------------------------------------ read

    def _line_kind(self, line: bytes) -> str | None:
        """'part' for a delimiter line, 'close' for the closing one, None for anything else."""
        stripped = line.rstrip(b"\r\n").rstrip(b" \t")
        for delimiter in self._delimiters:
            if stripped == delimiter:
                return "part"
            if stripped == delimiter + b"--":
                return "close"
        return None

    def _check_deadline(self) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise self._fail("source_timeout", f"a part took more than {self.max_part_s:g} s")

    def _fill(self) -> bool:
        """One socket read (at most ``_CHUNK`` bytes) into the buffer; False at the end of the stream.

        Reading through our own buffer, one ``recv`` at a time, lets the part deadline be
        checked after every read: ``readline`` would block until a newline however slowly
        the bytes trickle in."""
        assert self._resp is not None
        self._check_deadline()
        try:
            chunk = self._resp.read1(_CHUNK)
        except Exception as exc:
            raise self._io_error(exc, opening=False) from None
        if not chunk:
            return False
        self._buf += chunk
        return True

    def _readline(self) -> bytes:
        """Bytes up to and including the next newline (at most ``LINE_LIMIT``); b"" at the end."""
        buf = self._buf
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end >= 0 and end < LINE_LIMIT:
                line = bytes(buf[: end + 1])
                del buf[: end + 1]
                return line
            if len(buf) >= LINE_LIMIT:
                line = bytes(buf[:LINE_LIMIT])
                del buf[:LINE_LIMIT]
                return line
            start = len(buf)
            if not self._fill():
                line = bytes(buf)
                buf.clear()
                return line

    def _read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer when fewer are buffered); b"" at the end."""
        if not self._buf and not self._fill():
            return b""
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _seek_part(self) -> bool:
        """Skip to the next delimiter line; False when the stream closed or ended."""
        discarded = 0
        self._deadline = None  # a slow camera may take its time between frames
        while True:
            line = self._readline()
            if not line:
                return False
            kind = self._line_kind(line)
            if kind == "part":
                return True
            if kind == "close":
                return False
            discarded += len(line)
            if discarded > DISCARD_FACTOR * self.limits.max_bytes:
                raise self._fail("source_decode_failed", f"no multipart boundary within {discarded} bytes")

    def _part_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        size = 0
        while True:
            line = self._readline()
            if not line:
                raise self._fail("source_ended", "the stream ended inside a part's headers")
            size += len(line)
            if size > MAX_HEADER_BYTES:
                raise self._fail("source_decode_failed", f"a part's headers exceed {MAX_HEADER_BYTES} bytes")
            text = line.decode("latin-1").strip()
            if not text:
                return headers
            name, colon, value = text.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()

    def _body_with_length(self, length: int) -> bytes | None:
        """Exactly ``length`` bytes; None (discarded) when over the byte limit."""
        keep = length <= self.limits.max_bytes
        if not keep and length > DISCARD_FACTOR * self.limits.max_bytes:
            raise self._fail("source_decode_failed", f"a part declares {length} bytes")
        chunks: list[bytes] = []
        left = length
        while left > 0:
            chunk = self._read(min(left, _CHUNK))
            if not chunk:
                raise self._fail("source_ended", "the stream ended inside a part")
            left -= len(chunk)
            if keep:
                chunks.append(chunk)
        return b"".join(chunks) if keep else None

    def _body_to_boundary(self) -> tuple[bytes | None, bool]:
        """The bytes up to the next delimiter line (None when over the byte limit), and whether
        that delimiter closed the stream."""
        body = bytearray()
        total = 0
        over = False
        while True:
            line = self._readline()
            if not line:
                raise self._fail("source_ended", "the stream ended inside a part")
            kind = self._line_kind(line)
            if kind is not None:
                break
            total += len(line)
            if over:
                if total > DISCARD_FACTOR * self.limits.max_bytes:
                    raise self._fail("source_decode_failed", f"no multipart boundary within {total} bytes")
                continue
            if total > self.limits.max_bytes + 2:  # + the CRLF that belongs to the delimiter
                over = True
                body = bytearray()
                continue
            body += line
        if over:
            return None, kind == "close"
        if body.endswith(b"\r\n"):  # the line break before a delimiter is part of the delimiter
            del body[-2:]
        elif body.endswith(b"\n"):
            del body[-1:]
        return bytes(body), kind == "close"

    def _skip(self, code: str) -> None:
        self.skipped += 1
        self._bad_in_row += 1
        self.last_error = code
        if self._bad_in_row >= self.max_bad_parts:
            raise self._fail("source_decode_failed", f"{self._bad_in_row} parts in a row were refused (last: {code})")

    def read(self) -> SourceFrame | None:
        if self._resp is None:
            raise self._fail("source_ended", "the stream is not open")
        while True:
            if self._ended or not (self._at_part or self._seek_part()):
                self._ended = True
                raise self._fail("source_ended", "the stream ended")
            self._at_part = False
            self._deadline = time.monotonic() + self.max_part_s
            headers = self._part_headers()
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            length_text = headers.get("content-length", "")
            valid = length_text.isascii() and length_text.isdigit() and len(length_text) <= 18
            length = int(length_text) if valid else None  # a bad length: read to the boundary
            if length is not None:
                data = self._body_with_length(length)
            else:
                data, closed = self._body_to_boundary()
                self._at_part = not closed
                self._ended = closed
            wall_ts = time.monotonic()
            if data is None:
                self._skip("image_too_large")
                continue
            if ctype and not ctype.startswith("image/"):
                self._skip("image_unsupported_type")
                continue
            try:
                rgb = decode_image(data, self.limits)
            except ImageError as exc:
                if exc.code == "image_too_many_pixels":
                    raise self._fail("frame_too_large", f"a frame is over the pixel limit ({exc.message})") from None
                self._skip(exc.code)
                continue
            self._bad_in_row = 0
            frame = SourceFrame(index=self._index, wall_ts=wall_ts, pts=None, rgb=rgb)
            self._index += 1
            return frame

    def close(self) -> None:
        resp, self._resp = self._resp, None
        conn, self._conn = self._conn, None
        for thing in (resp, conn):
            if thing is not None:
                with contextlib.suppress(Exception):  # a broken connection; nothing is left to release
                    thing.close()

    def __enter__(self) -> MjpegSource:
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
