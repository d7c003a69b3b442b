"""Reading uploaded images (multipart, base64 JSON or a raw body) and ZIP archives, within limits.

ZIP archives are never extracted to disk: entries are read in memory after their headers
pass the checks (entry count, total uncompressed size, compression ratio), and entries
with absolute paths, ``..`` components or symbolic links are refused one by one.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from fastapi import Request
from starlette.datastructures import UploadFile

from facegate.api.problems import ApiError
from facegate.config import LimitSettings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
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
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise ApiError("the body is not valid JSON", code="invalid_json", status=422) from None
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


@dataclass(frozen=True)
class ZipEntry:
    """One image of an enrolment archive, or why it was refused."""

    path: str
    person: str
    data: bytes | None
    code: str | None = None
    detail: str | None = None


def _unsafe(name: str, info: zipfile.ZipInfo) -> str | None:
    path = name.replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "absolute path"
    if any(part == ".." for part in path.split("/")):
        return "'..' in path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def read_zip(data: bytes, limits: LimitSettings) -> list[ZipEntry]:
    """Image entries of an enrolment archive with the person each belongs to.

    A folder name is the person's name (``Ada Lovelace/1.jpg``), else the file name
    (``Ada Lovelace.jpg``); one folder wrapping everything is ignored. Raises ``ApiError``
    (413 / 422) when the archive as a whole breaks a limit or is not a ZIP.
    """
    if len(data) > limits.max_zip_bytes:
        raise ApiError(f"archive is {len(data)} bytes; the limit is {limits.max_zip_bytes}", code="zip_too_large")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise ApiError(f"not a readable ZIP archive: {exc}", code="zip_corrupt", status=422) from None
    if len(infos) > limits.max_zip_entries:
        raise ApiError(f"{len(infos)} entries; the limit is {limits.max_zip_entries}", code="zip_too_many_entries")
    files = [i for i in infos if not i.is_dir()]
    declared = sum(i.file_size for i in files)
    if declared > limits.max_zip_uncompressed_bytes:
        raise ApiError(
            f"{declared} bytes uncompressed; the limit is {limits.max_zip_uncompressed_bytes}", code="zip_too_large"
        )
    for info in files:
        if info.file_size > limits.max_zip_ratio * max(info.compress_size, 1) and info.file_size > 1024 * 1024:
            raise ApiError(
                f"{info.filename} expands {info.file_size / max(info.compress_size, 1):.0f}x; "
                f"the limit is {limits.max_zip_ratio:.0f}x",
                code="zip_bomb",
                status=413,
            )
    visible = [
        i
        for i in files
        if _unsafe(i.filename, i)
        or not any(p.startswith((".", "__MACOSX")) for p in PurePosixPath(i.filename.replace("\\", "/")).parts)
    ]
    safe = [PurePosixPath(i.filename.replace("\\", "/")).parts for i in visible if not _unsafe(i.filename, i)]
    wrapped = len({parts[0] for parts in safe}) == 1 and all(len(parts) > 1 for parts in safe)
    entries = []
    for info in visible:
        reason = _unsafe(info.filename, info)
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts[1 if wrapped else 0 :]
        person = (parts[-2] if len(parts) > 1 else PurePosixPath(parts[-1]).stem).strip() if parts else ""
        if reason:
            entries.append(ZipEntry(info.filename, person, None, "zip_unsafe_entry", reason))
        elif not info.filename.lower().endswith(IMAGE_SUFFIXES):
            entries.append(ZipEntry(info.filename, person, None, "not_an_image", "not a .jpg/.png/.webp/.bmp file"))
        elif info.file_size > limits.max_image_bytes:
            entries.append(ZipEntry(info.filename, person, None, "image_too_large", f"{info.file_size} bytes"))
        elif not person:
            entries.append(ZipEntry(info.filename, person, None, "invalid_name", "no person name"))
        else:
            try:
                entries.append(ZipEntry(info.filename, person[:200], archive.read(info)))
            except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as exc:
                entries.append(ZipEntry(info.filename, person, None, "zip_corrupt", str(exc)))
    return entries
