"""Reading uploaded images (multipart, base64 JSON or a raw body) and ZIP archives, within limits.

ZIP archives are never extracted: an upload is spooled to a temporary file and its entries
are read one at a time, with hard caps on the bytes they really inflate to (not what their
headers claim); entries with absolute paths, ``..`` components or symbolic links,
encrypted or compressed with anything but deflate, are refused one by one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import os
import stat
import struct
import tempfile
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from facegate.api.problems import ApiError, parse_json
from facegate.config import LimitSettings
from facegate.service.enrolment import IMAGE_SUFFIXES

MULTIPART = "multipart/form-data"
IMAGE_FORMATS = {"image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream"}


def image_body(*, fields: tuple[str, ...], many: bool) -> dict:
    """The OpenAPI request body of an endpoint that takes images as files or base64 JSON."""
    binary = {"type": "string", "format": "binary"}
    text = {"type": "string", "description": "base64-encoded image"}
    if many:
        form = {
            "type": "object",
            "properties": {fields[0]: {"type": "array", "items": binary}},
            "required": [fields[0]],
        }
        js = {"type": "object", "properties": {fields[0]: {"type": "array", "items": text}}, "required": [fields[0]]}
    else:
        form = {"type": "object", "properties": {f: binary for f in fields}, "required": [fields[0]]}
        js = {"type": "object", "properties": {f: text for f in fields}, "required": [fields[0]]}
    return {
        "requestBody": {
            "required": True,
            "content": {MULTIPART: {"schema": form}, "application/json": {"schema": js}},
        }
    }


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _b64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise ApiError(f"{name} must be a base64 string", code="invalid_request", status=422)
    if value.startswith("data:") and "," in value:  # a data: URL from a browser
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(f"{name} is not valid base64", code="invalid_base64", status=422) from None


async def read_images(request: Request, fields: tuple[str, ...], limits: LimitSettings, max_files: int = 1) -> dict:
    """The uploaded images by field name: ``{field: [(filename, bytes), ...]}``.

    Multipart files, a JSON object of base64 strings (or lists of them), or (for one field)
    a raw ``image/*`` body. Raises ``ApiError`` 415/413/422 for other types, sizes or shapes.
    """
    kind = _media_type(request)
    found: dict[str, list[tuple[str, bytes]]] = {f: [] for f in fields}
    if kind == MULTIPART:
        try:
            form = await request.form(max_files=max_files, max_fields=20, max_part_size=1024 * 1024)
        except ApiError:
            raise
        except Exception as exc:  # starlette raises its own errors for malformed or oversized forms
            raise ApiError(f"cannot read the multipart form: {exc}", code="invalid_multipart", status=422) from None
        for key, value in form.multi_items():
            if key in found and isinstance(value, UploadFile):
                found[key].append((value.filename or key, await value.read()))
        await form.close()
    elif kind == "application/json":
        body = parse_json(await request.body())  # 400 json_too_deep, 422 invalid_json
        if not isinstance(body, dict):
            raise ApiError("the JSON body must be an object", code="invalid_request", status=422)
        for key in fields:
            value = body.get(key)
            values = value if isinstance(value, list) else [] if value is None else [value]
            found[key] = [(f"{key}[{i}]", _b64(v, key)) for i, v in enumerate(values)]
    elif kind in IMAGE_FORMATS or kind.startswith("image/"):
        found[fields[0]] = [("body", await request.body())]
    else:
        raise ApiError(
            f"send images as multipart/form-data, application/json (base64) or image/*; got {kind or 'nothing'}",
            code="unsupported_media_type",
        )
    total = sum(len(v) for v in found.values())
    if total > max_files:
        raise ApiError(f"at most {max_files} image(s) per request; got {total}", code="too_many_files")
    for items in found.values():
        for name, data in items:
            if len(data) > limits.max_image_bytes:
                raise ApiError(
                    f"{name} is {len(data)} bytes; the limit is {limits.max_image_bytes}", code="image_too_large"
                )
    return found


def one_image(found: dict, field: str) -> bytes:
    """The single image uploaded as ``field``; 422 when it is missing."""
    items = found.get(field) or []
    if not items:
        raise ApiError(f"no image was sent as {field!r}", code="image_missing", status=422)
    if len(items) > 1:
        raise ApiError(f"send one image as {field!r}; got {len(items)}", code="too_many_files")
    return items[0][1]


# ----------------------------------------------------------------- ZIP archives

ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")
ZIP_SPOOL = 1024 * 1024  # an uploaded archive stays in memory up to this size, then goes to a temporary file
ZIP_CHUNK = 64 * 1024  # archive bytes read (and inflated) at a time
RATIO_FLOOR = 64 * 1024  # the ratio limit applies to entries that inflate to this many bytes or more
MAX_PATH_BYTES = 1024  # a longer entry name is refused (and not kept)
STORED, DEFLATED = 0, 8
METHODS = {9: "deflate64", 12: "bzip2", 14: "LZMA", 93: "Zstandard", 95: "xz", 96: "JPEG", 97: "WavPack", 98: "PPMd"}


def zip_body() -> dict:
    """The OpenAPI request body of ZIP enrolment: a multipart ``archive`` file or a raw ``application/zip`` body."""
    binary = {"type": "string", "format": "binary"}
    form = {"type": "object", "properties": {"archive": binary}, "required": ["archive"]}
    content = {MULTIPART: {"schema": form}, "application/zip": {"schema": binary}}
    return {"requestBody": {"required": True, "content": content}}


def _zip_size(size: int, limits: LimitSettings) -> None:
    if size > limits.max_zip_bytes:
        raise ApiError(f"the archive is over the limit of {limits.max_zip_bytes} bytes", code="zip_too_large")


@contextlib.asynccontextmanager
async def zip_upload(request: Request, limits: LimitSettings) -> AsyncIterator[BinaryIO]:
    """The uploaded archive as a file: a multipart ``archive`` field or a raw ZIP body, spooled to a
    temporary file as it arrives (never whole in memory). 413 over ``max_zip_bytes``, 415 for other types."""
    kind = _media_type(request)
    if kind == MULTIPART:
        try:  # starlette spools each file part to a temporary file past 1 MB
            form = await request.form(max_files=1, max_fields=20)
        except ApiError:
            raise
        except Exception as exc:  # starlette raises its own errors for malformed forms
            raise ApiError(f"cannot read the multipart form: {exc}", code="invalid_multipart", status=422) from None
        try:
            upload = form.get("archive")
            if not isinstance(upload, UploadFile):
                raise ApiError("no ZIP archive was sent as 'archive'", code="zip_missing", status=422)
            _zip_size(upload.size or 0, limits)
            yield upload.file
        finally:
            await form.close()
    elif kind in ZIP_TYPES:
        with tempfile.SpooledTemporaryFile(ZIP_SPOOL) as spool:
            size, buffer = 0, bytearray()
            async for chunk in request.stream():
                size += len(chunk)
                _zip_size(size, limits)
                buffer += chunk
                if len(buffer) >= ZIP_SPOOL:
                    await run_in_threadpool(spool.write, bytes(buffer))
                    buffer.clear()
            await run_in_threadpool(spool.write, bytes(buffer))
            yield spool
    else:
        raise ApiError(
            f"send the archive as multipart/form-data (field 'archive') or application/zip; got {kind or 'nothing'}",
            code="unsupported_media_type",
        )


@dataclass(frozen=True)
class ZipEntry:
    """One image of an enrolment archive and the person it is of, or why it was refused (``code``)."""

    path: str
    person: str
    data: bytes | None
    code: str | None = None
    detail: str | None = None

    @property
    def error(self) -> ApiError | None:
        return ApiError(self.detail or self.code, code=self.code, status=422) if self.code else None


@dataclass
class _Member:
    """A central-directory record: what the archive says of one entry (``offset``: its local header)."""

    name: str
    flags: int
    method: int
    crc: int
    csize: int
    usize: int
    offset: int
    mode: int  # Unix mode from the external attributes (links)
    long_name: bool = False
    data: int = -1  # where its data starts, once its local header was read
    end: int = -1


@dataclass
class _Planned:
    member: _Member
    path: str
    person: str = ""
    code: str | None = None
    detail: str | None = None


class _Corrupt(Exception):
    """An entry's data is damaged: that entry is refused (``zip_corrupt``)."""


def _corrupt_archive(why: str) -> ApiError:
    return ApiError(f"not a readable ZIP archive: {why}", code="zip_corrupt", status=422)


def _unsafe(path: str, mode: int) -> str | None:
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "absolute path"
    if any(part == ".." for part in path.split("/")):
        return "'..' in path"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    return None


def read_zip(file: BinaryIO, limits: LimitSettings) -> Iterator[ZipEntry]:
    """The entries of an enrolment archive, one at a time, each with the person it is of or why it is refused.

    A folder holding photos is a person, named by the folder (the innermost: ``staff/Ada/1.jpg``
    is Ada); file names never name anyone, so a photo at the top of the archive, or beside
    folders of people, is refused (``no_person_folder``). Whole-archive checks run before this
    returns, raising ``ApiError``: the entry count (of the real records, whatever the end
    record says), entries sharing bytes (``zip_overlapping_entries``), and every entry to be
    read is inflated once and thrown away, to check what it really holds against what it
    declares (more is ``zip_bomb``), the ratio and the total. The iterator then reads entries
    again one by one (never more than one in memory), a person's photos one after another.
    Encrypted entries and compression other than stored and deflate are refused one by one.
    """
    members = _central_directory(file, limits)
    plan = _plan(file, members, limits)
    readable = [e for e in plan if e.code is None]
    declared = sum(e.member.usize for e in readable)
    if declared > limits.max_zip_uncompressed_bytes:
        raise ApiError(
            f"{declared} bytes uncompressed; the limit is {limits.max_zip_uncompressed_bytes}", code="zip_too_large"
        )
    for e in readable:
        m = e.member
        if m.usize >= RATIO_FLOOR and m.usize > limits.max_zip_ratio * max(m.csize, 1):
            raise ApiError(
                f"{e.path} expands {m.usize / max(m.csize, 1):.0f}x; the limit is {limits.max_zip_ratio:.0f}x",
                code="zip_bomb",
                status=413,
            )
    for e in readable:
        try:
            _inflate(file, e.member, limits.max_zip_ratio)
        except _Corrupt as exc:
            e.code, e.detail = "zip_corrupt", str(exc)
    return _entries(file, plan, limits.max_zip_ratio)


def _central_directory(file: BinaryIO, limits: LimitSettings) -> list[_Member]:
    """The central directory's records, read one by one (at most ``max_zip_entries`` of them are kept)."""
    size = file.seek(0, os.SEEK_END)
    _zip_size(size, limits)
    tail_size = min(size, 22 + 0xFFFF)
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or tail_size - at < 22:
        raise _corrupt_archive("no end of central directory (not a ZIP, or cut off)")
    _, disk, cd_disk, _, count, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", tail[at : at + 22])
    end = size - tail_size + at
    zip64 = _zip64_end(file, end)  # writers may add one even when the classic record's fields suffice
    if zip64 is not None:
        end, disk, cd_disk, count, cd_size, cd_offset = zip64
    elif 0xFFFF in (count, disk, cd_disk) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise _corrupt_archive("a ZIP64 archive without its ZIP64 end record")
    if disk or cd_disk:
        raise _corrupt_archive("archives split over several files are not read")
    if count > limits.max_zip_entries:
        raise ApiError(f"{count} entries; the limit is {limits.max_zip_entries}", code="zip_too_many_entries")
    base = end - cd_size - cd_offset  # bytes before the archive (a self-extractor's stub)
    if base < 0:
        raise _corrupt_archive("the central directory lies outside the file")
    file.seek(base + cd_offset)
    members: list[_Member] = []
    left = cd_size
    while left > 0:
        fixed = file.read(46)
        if len(fixed) < 46 or fixed[:4] != b"PK\x01\x02":
            raise _corrupt_archive("a damaged central directory")
        (_, _, _, flags, method, _, _, crc, csize, usize, n, m, k, _, _, attr, offset) = struct.unpack(
            "<4s6H3L5H2L", fixed
        )
        if len(members) == limits.max_zip_entries:
            raise ApiError(f"over {limits.max_zip_entries} entries", code="zip_too_many_entries")
        raw = file.read(min(n, MAX_PATH_BYTES))
        file.seek(n - len(raw), os.SEEK_CUR)
        extra = file.read(m)
        file.seek(k, os.SEEK_CUR)
        left -= 46 + n + m + k
        usize, csize, offset = _zip64_sizes(extra, usize, csize, offset)
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        members.append(_Member(name, flags, method, crc, csize, usize, base + offset, attr >> 16, n > MAX_PATH_BYTES))
    if left != 0:
        raise _corrupt_archive("the central directory does not match its declared size")
    for member in members:
        _local_header(file, member, base + cd_offset)
    return members


def _zip64_end(file: BinaryIO, end: int) -> tuple[int, int, int, int, int, int] | None:
    """(where it starts, disk, directory's disk, entries, directory size, directory offset) of the ZIP64 end
    record, found by the locator just before the end record; None when there is no locator."""
    if end < 20 + 56:
        return None
    file.seek(end - 20)
    if file.read(4) != b"PK\x06\x07":
        return None
    file.seek(end - 20 - 56)  # the ZIP64 end record sits just before its locator
    sig, _, _, _, disk, cd_disk, _, count, cd_size, cd_offset = struct.unpack("<4sQ2H2L4Q", file.read(56))
    if sig != b"PK\x06\x06":
        raise _corrupt_archive("a damaged ZIP64 end record")
    return end - 20 - 56, disk, cd_disk, count, cd_size, cd_offset


def _zip64_sizes(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    """The sizes and offset a record keeps in its ZIP64 extra field (those set to 0xFFFFFFFF)."""
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<2H", extra, at)
        if tag == 1:
            values, field = [], at + 4
            for value in (usize, csize, offset):
                if value == 0xFFFFFFFF:
                    if field + 8 > at + 4 + length:
                        raise _corrupt_archive("a damaged ZIP64 extra field")
                    value = struct.unpack_from("<Q", extra, field)[0]
                    field += 8
                values.append(value)
            return values[0], values[1], values[2]
        at += 4 + length
    return usize, csize, offset


def _local_header(file: BinaryIO, m: _Member, directory: int) -> None:
    """Where an entry's data starts and ends, from its local header (left at -1 when that is damaged)."""
    file.seek(m.offset)
    header = file.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        return
    n, extra = struct.unpack_from("<2H", header, 26)
    data = m.offset + 30 + n + extra
    if data + m.csize <= directory:
        m.data, m.end = data, data + m.csize


def _plan(file: BinaryIO, members: list[_Member], limits: LimitSettings) -> list[_Planned]:
    """Each file entry's path, person and, when it is refused, why; overlapping entries refuse the archive."""
    spans = sorted((m.offset, m.end, m.name) for m in members if m.data >= 0)
    for (_, end, name), (start, _, other) in itertools.pairwise(spans):
        if start < end:
            raise ApiError(
                f"entries {name!r} and {other!r} share bytes of the archive", code="zip_overlapping_entries", status=422
            )
    plan, images = [], {}
    for m in members:
        path = m.name.replace("\\", "/")
        if path.endswith("/"):
            continue  # a folder
        unsafe = _unsafe(path, m.mode)
        parts = PurePosixPath(path).parts
        if not unsafe and any(p.startswith((".", "__MACOSX")) for p in parts):
            continue  # hidden files and macOS metadata
        entry = _Planned(m, path)
        plan.append(entry)
        if m.long_name:
            entry.code, entry.detail = "invalid_name", f"a path over {MAX_PATH_BYTES} bytes"
        elif unsafe:
            entry.code, entry.detail = "zip_unsafe_entry", unsafe
        elif not path.lower().endswith(tuple(IMAGE_SUFFIXES)):
            entry.code, entry.detail = "not_an_image", "not a .jpg/.png/.webp/.bmp file"
        else:
            images[id(entry)] = parts[:-1]
    folders = set(images.values())
    parents = {folder[:i] for folder in folders for i in range(1, len(folder))}
    for entry in plan:
        folder = images.get(id(entry))
        if folder is None:
            continue
        m = entry.member
        entry.person = folder[-1].strip() if folder else ""
        if m.flags & 0x41 or m.method == 99:  # ZipCrypto, strong encryption, WinZip AES
            entry.code, entry.detail = "zip_entry_encrypted", "encrypted; send the archive without a password"
        elif m.method not in (STORED, DEFLATED):
            name = METHODS.get(m.method, f"method {m.method}")
            entry.code, entry.detail = "zip_entry_unsupported", f"compressed with {name}; only deflate is read"
        elif m.data < 0:
            entry.code, entry.detail = "zip_corrupt", "a damaged local header"
        elif m.usize > limits.max_image_bytes:
            entry.code, entry.detail = "image_too_large", f"{m.usize} bytes; the limit is {limits.max_image_bytes}"
        elif not folder or folder in parents:
            entry.code = "no_person_folder"
            entry.detail = "not in a folder of its own: put each person's photos in a folder named after them"
        elif not entry.person or len(entry.person) > 200:
            entry.code, entry.detail = "invalid_name", "a person's folder name must have 1 to 200 characters"
    return plan


def _inflate(file: BinaryIO, m: _Member, ratio: float, sink: Callable[[bytes], object] | None = None) -> int:
    """Read one entry's data, ``ZIP_CHUNK`` at a time, into ``sink``; returns the bytes it holds.

    Never produces more than the entry declares plus one byte: more refuses the archive
    (``zip_bomb``), as does a real ratio over the limit. Data that ends early, or does not
    match its declared size or CRC, raises ``_Corrupt``.
    """
    if m.csize == 0 and m.usize == 0:
        return 0
    file.seek(m.data)
    left, produced, crc, pending = m.csize, 0, 0, b""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if m.method == DEFLATED else None
    while True:
        if not pending:
            if left == 0:
                break
            pending = file.read(min(ZIP_CHUNK, left))
            if not pending:
                raise _Corrupt("the archive ends inside this entry")
            left -= len(pending)
        room = m.usize + 1 - produced
        if inflater is None:
            out, pending = pending[:room], pending[room:]
        else:
            try:
                out = inflater.decompress(pending, room)
            except zlib.error as exc:
                raise _Corrupt(f"damaged deflate data ({exc})") from None
            pending = inflater.unconsumed_tail
        produced += len(out)
        if produced > m.usize:
            raise ApiError(f"{m.name} holds more than the {m.usize} bytes it declares", code="zip_bomb", status=413)
        crc = zlib.crc32(out, crc)
        if sink is not None:
            sink(out)
        if inflater is not None and inflater.eof:
            break
    if inflater is not None and not inflater.eof:
        raise _Corrupt("the deflate data is cut off")
    consumed = m.csize - left - len(pending) - (len(inflater.unused_data) if inflater is not None else 0)
    if produced >= RATIO_FLOOR and produced > ratio * max(consumed, 1):
        raise ApiError(
            f"{m.name} expands {produced / max(consumed, 1):.0f}x; the limit is {ratio:.0f}x",
            code="zip_bomb",
            status=413,
        )
    if produced != m.usize:
        raise _Corrupt(f"{produced} bytes where {m.usize} are declared")
    if crc != m.crc:
        raise _Corrupt("CRC-32 mismatch")
    return produced


def _entries(file: BinaryIO, plan: list[_Planned], ratio: float) -> Iterator[ZipEntry]:
    """Refused entries first, then each person's photos together (in the order people first appear)."""
    for e in plan:
        if e.code is not None:
            yield ZipEntry(e.path, e.person, None, e.code, e.detail)
    readable = [e for e in plan if e.code is None]
    first = {}
    for e in readable:
        first.setdefault(e.person, len(first))
    for e in sorted(readable, key=lambda e: first[e.person]):
        data = bytearray()
        try:
            _inflate(file, e.member, ratio, data.extend)
        except _Corrupt as exc:  # checked already; only a file changed under us gets here
            yield ZipEntry(e.path, e.person, None, "zip_corrupt", str(exc))
            continue
        yield ZipEntry(e.path, e.person, bytes(data))
