"""Decode images from bytes, paths or arrays into RGB uint8 arrays, safely.

Every failure raises :class:`ImageError` with a stable ``code``:

==========================  ==================================================
``image_empty``             zero bytes, or an array with no pixels
``image_too_large``         more bytes than ``ImageLimits.max_bytes``
``image_too_many_pixels``   more pixels than ``ImageLimits.max_pixels`` (bombs)
``image_unsupported_type``  not PNG, JPEG, WebP or BMP (or a bad array type)
``image_corrupt``           the format is recognised but the data is broken
``image_truncated``         the data ends before the image does (also a JPEG whose
                            scans carry fewer pixels than its header declares, or whose
                            scans leave a component or coefficient uncoded)
``image_too_complex``       a JPEG with more scans than ``ImageLimits.max_jpeg_scans``
                            or more than ``MAX_JPEG_SEGMENTS`` marker segments, a PNG
                            with more than ``MAX_PNG_CHUNKS`` chunks
``image_not_found``         a path that does not exist or is not a file
==========================  ==================================================

Before any pixel is decoded, JPEGs are walked marker by marker (:func:`check_jpeg`) and
PNG chunks counted (:func:`check_png`): libjpeg neither bounds the number of scans (each
is one more pass over every coefficient, so a 250 kB file of repeated scans costs half a
minute of CPU) nor fails on missing scan data (it fills the rest of the declared size
with grey and only emits a warning), and Pillow reads every PNG chunk in Python.

JPEGs are then decoded by libjpeg-turbo through ``simplejpeg`` with warnings turned into
errors (``strict=True``): a scan that runs out of data before the size its header declares
("premature end of data segment") or a file without its end is ``image_truncated``, exactly,
where OpenCV and Pillow return the missing part as grey. A progressive JPEG whose last scans
are missing raises no warning at all (libjpeg shows the coarser image): :func:`check_jpeg`
requires every coefficient of every component to be coded to its last bit.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facegate.vision.errors import ImageError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "MPO")


@dataclass(frozen=True)
class ImageLimits:
    """Bounds applied before and during decoding."""

    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000  # a 7000x7000 photo fits; a decompression bomb does not
    max_side: int = 20_000
    # libjpeg's progressive script writes 10 scans (6 for grey); each scan is one more pass
    # over every coefficient: a 47 MP JPEG decodes in 0.5 s CPU with 10 scans, 1.6 s with 100
    max_jpeg_scans: int = 100


DEFAULT_LIMITS = ImageLimits()

ImageSource = bytes | bytearray | memoryview | str | Path | np.ndarray


def load_image(source: ImageSource, limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Return an (H, W, 3) RGB uint8 array from encoded bytes, a file path or an array.

    EXIF orientation is applied; grayscale, palette, RGBA (composited on white) and
    16-bit images are converted to 8-bit RGB. Raises :class:`ImageError`.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, limits)
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"no such image file: {path}", code="image_not_found")
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise ImageError(f"image is {size} bytes; the limit is {limits.max_bytes}", code="image_too_large")
        return decode_image(path.read_bytes(), limits)
    if isinstance(source, bytes | bytearray | memoryview):
        return decode_image(bytes(source), limits)
    raise ImageError(f"cannot read an image from {type(source).__name__}", code="image_unsupported_type")


def decode_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Decode encoded image bytes (PNG, JPEG, WebP, BMP) into an (H, W, 3) RGB uint8 array."""
    if not data:
        raise ImageError("the image is empty (0 bytes)", code="image_empty")
    if len(data) > limits.max_bytes:
        raise ImageError(f"image is {len(data)} bytes; the limit is {limits.max_bytes}", code="image_too_large")
    if data[:3] == b"\xff\xd8\xff":  # what Pillow opens as a JPEG
        check_jpeg(data, limits)
    elif data[:8] == PNG_SIGNATURE:
        check_png(data)
    elif data[:2] == b"BM":
        check_bmp(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            _check_header(img, limits)
            fast = _decode_jpeg(img, data)
            if fast is not None:
                return fast
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(str(exc), code="image_too_many_pixels") from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not a recognised image (PNG, JPEG, WebP or BMP)", code="image_unsupported_type") from exc
    except OSError as exc:
        text = str(exc).lower()
        code = "image_truncated" if "truncated" in text or "premature" in text else "image_corrupt"
        raise ImageError(f"cannot decode the image: {exc}", code=code) from exc
    except (ValueError, SyntaxError, EOFError, IndexError, TypeError, MemoryError) as exc:
        raise ImageError(f"cannot decode the image: {exc}", code="image_corrupt") from exc
    return _to_rgb(img)


# libjpeg warnings (jerror.h) that mean the decoder invented pixels: the scan data ran out
# (JWRN_HIT_MARKER, JWRN_JPEG_EOF) or a restart interval is missing (JWRN_MUST_RESYNC) ...
_TRUNCATED_WARNINGS = ("premature end", "instead of rst")
# ... or decoded garbage (JWRN_HUFF_BAD_CODE, JWRN_ARITH_BAD_CODE, JWRN_BOGUS_PROGRESSION)
_CORRUPT_WARNINGS = ("bad huffman code", "bad arithmetic code", "inconsistent progression")
_PILLOW_CMYK_RAWMODES = frozenset({"CMYK", "CMYK;I"})


def _decode_jpeg(img: Image.Image, data: bytes) -> np.ndarray | None:
    """libjpeg-turbo (simplejpeg) for RGB, grey and CMYK JPEGs, refusing what libjpeg invents.

    ~2x faster than OpenCV on a 12 MP photo (same libjpeg, same pixels) and it stops at the
    first warning: a scan without the data its header declares is ``image_truncated``, bad
    entropy data ``image_corrupt``. Another warning (extraneous bytes before a marker, an
    unknown JFIF revision) invents nothing: the image is decoded again without stopping.
    Errors libjpeg-turbo cannot recover from return None: Pillow's decoder reports them.
    EXIF orientation is applied as Pillow's ``ImageOps.exif_transpose`` (and OpenCV) do.
    """
    if img.format not in ("JPEG", "MPO") or img.mode not in ("RGB", "L", "CMYK"):
        return None
    import simplejpeg

    cmyk = img.mode == "CMYK"
    rawmode = img.tile[0][3][0] if cmyk and img.tile and img.tile[0][3] else None  # Pillow's (name, box, offset, args)
    if cmyk and rawmode not in _PILLOW_CMYK_RAWMODES:
        return None
    colorspace = "cmyk" if cmyk else "rgb"
    try:
        arr = simplejpeg.decode_jpeg(data, colorspace, strict=True)
    except ValueError as exc:
        text = str(exc).lower()
        if any(warning in text for warning in _TRUNCATED_WARNINGS):
            raise ImageError(f"the JPEG is truncated: {exc}", code="image_truncated") from exc
        if any(warning in text for warning in _CORRUPT_WARNINGS):
            raise ImageError(f"cannot decode the image: {exc}", code="image_corrupt") from exc
        try:
            arr = simplejpeg.decode_jpeg(data, colorspace, strict=False)
        except ValueError:
            return None
    if arr.shape[:2] != (img.height, img.width):
        return None
    if cmyk:  # Pillow's CMYK conversion, as before (Adobe files store inverted CMYK)
        raw = Image.frombuffer("CMYK", img.size, arr, "raw", rawmode, 0, 1)
        arr = np.asarray(raw.convert("RGB"), dtype=np.uint8)
    return _apply_orientation(arr, _exif_orientation(img))


def _exif_orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block must not reject a decodable image
        return 1


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an (H, W, 3) array upright for its EXIF orientation (1-8), as ``exif_transpose`` does."""
    if orientation not in range(2, 9):
        return arr
    import cv2

    if orientation == 2:
        return cv2.flip(arr, 1)
    if orientation == 3:
        return cv2.rotate(arr, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(arr, 0)
    if orientation == 6:
        return cv2.rotate(arr, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 8:
        return cv2.rotate(arr, cv2.ROTATE_90_COUNTERCLOCKWISE)
    turned = cv2.transpose(arr)  # 5: across the main diagonal; 7: across the other one
    return turned if orientation == 5 else cv2.rotate(turned, cv2.ROTATE_180)


def _check_header(img: Image.Image, limits: ImageLimits) -> None:
    if img.format not in ACCEPTED_FORMATS:
        raise ImageError(
            f"image format {img.format} is not accepted (PNG, JPEG, WebP or BMP)",
            code="image_unsupported_type",
        )
    _check_size(*img.size, limits)


def _check_size(w: int, h: int, limits: ImageLimits) -> None:
    if w <= 0 or h <= 0:
        raise ImageError("the image has no pixels", code="image_empty")
    if w > limits.max_side or h > limits.max_side or w * h > limits.max_pixels:
        raise ImageError(
            f"image is {w}x{h} pixels; the limit is {limits.max_pixels} pixels and {limits.max_side} per side",
            code="image_too_many_pixels",
        )


# ----------------------------------------------------------------------------- PNG structure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow reads each chunk in Python, one at a time (a flood of empty chunks costs seconds). libpng
# writes 8 KiB IDAT chunks (3,200 in 25 MiB), some encoders one per row (20,000 at most).
MAX_PNG_CHUNKS = 50_000


def check_png(data: bytes) -> None:
    """Count a PNG's chunks from their lengths; more than ``MAX_PNG_CHUNKS`` is ``image_too_complex``."""
    pos, chunks = len(PNG_SIGNATURE), 0
    while pos + 8 <= len(data):
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise ImageError(f"the PNG has more than {MAX_PNG_CHUNKS} chunks", code="image_too_complex")
        if data[pos + 4 : pos + 8] == b"IEND":
            return
        pos += 12 + struct.unpack_from(">I", data, pos)[0]


# BMP compression methods (BITMAPINFOHEADER offset 30): 1 RLE8, 2 RLE4. Pillow decodes runs in
# Python: 25 MB of one-pixel runs took 3.0 s of CPU. Cameras and browsers write uncompressed BMPs.
_BMP_RUN_LENGTH = frozenset({1, 2})


def check_bmp(data: bytes) -> None:
    """Run-length-encoded BMPs are refused (``image_unsupported_type``): decoding them is slow per byte."""
    info_header = len(data) >= 34 and struct.unpack_from("<I", data, 14)[0] >= 40  # BITMAPINFOHEADER or later
    if info_header and struct.unpack_from("<I", data, 30)[0] in _BMP_RUN_LENGTH:
        raise ImageError("run-length-encoded BMP is not accepted; send PNG or JPEG", code="image_unsupported_type")


# ----------------------------------------------------------------------------- JPEG structure

# Markers walked outside the scans (each Huffman table and each 65 bytes of quantisation
# tables count as one): real files have 10-40, an ICC profile split into chunks adds 255 at most.
MAX_JPEG_SEGMENTS = 2_000
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xff]")
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # the first marker after a scan that is not a restart
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RST0-7 have no length
_DCT_FRAMES = {0xC0: False, 0xC1: False, 0xC2: True, 0xC9: False, 0xCA: True}  # SOF marker -> progressive
_HUFFMAN_FRAMES = frozenset({0xC0, 0xC1, 0xC2})
_CHUNK = 1 << 20

HuffmanTable = tuple[bytes, bytes]  # the 16 code-length counts and the symbols, as in the DHT segment


@dataclass(frozen=True)
class _Frame:
    """What the scans need of a DCT frame header: size, coding and each component's sampling."""

    width: int
    height: int
    progressive: bool
    huffman: bool
    sampling: dict[int, tuple[int, int]]  # component id -> (h, v)


def check_jpeg(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> None:
    """Walk a JPEG's marker segments and scans without decoding a pixel; raise ImageError if hostile.

    ``image_too_complex``: more than ``limits.max_jpeg_scans`` scans or ``MAX_JPEG_SEGMENTS``
    segments. ``image_too_many_pixels``: a frame over the pixel limits. ``image_truncated``:
    the file ends inside a scan, a scan is shorter than the declared size needs (fewer
    restart markers than restart intervals, or fewer bits than the shortest Huffman codes of
    its blocks: a cheap bound, checked before the decoder allocates the declared size, which
    then finds any shorter lie exactly), or the end-of-image marker comes before every
    component was coded (every coefficient to its last bit, in a progressive JPEG).
    A regex finds where each scan ends: ~30 ms for 25 MB, 0.1 ms for a frame.
    """
    frame: _Frame | None = None
    tables: dict[tuple[int, int], HuffmanTable] = {}  # (0 DC | 1 AC, id) -> table
    coded: dict[int, list[int]] = {}  # component id -> the last successive-approximation bit coded, per coefficient
    restart_interval = scans = segments = 0
    pos = 2
    while pos + 2 <= len(data):  # the end-of-image marker may be the last two bytes
        if data[pos] != 0xFF or data[pos + 1] in (0x00, 0xFF):  # fill bytes or garbage: skip to a marker
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                return
            pos = found.start()
        marker = data[pos + 1]
        if marker == 0xD9:  # EOI
            if frame is not None:
                _check_complete(frame, coded)
            return
        segments += 1
        if marker in _STANDALONE:
            body, pos = b"", pos + 2
        else:
            if pos + 4 > len(data):
                return  # a broken segment: the decoder reports it
            (length,) = struct.unpack_from(">H", data, pos + 2)
            body = data[pos + 4 : pos + 2 + length]
            if length < 2 or len(body) < length - 2:
                return  # a broken segment: the decoder reports it
            pos += 2 + length
        if marker == 0xC4:
            segments += _read_huffman_tables(body, tables) - 1
        elif marker == 0xDB:
            segments += len(body) // 65  # a DQT segment holds 65-byte tables
        if segments > MAX_JPEG_SEGMENTS:
            raise ImageError(f"the JPEG has more than {MAX_JPEG_SEGMENTS} marker segments", code="image_too_complex")
        if marker in _DCT_FRAMES and frame is None:
            frame = _read_frame(body, marker, limits)
        elif marker == 0xDD and len(body) >= 2:
            (restart_interval,) = struct.unpack_from(">H", body)
        elif marker == 0xDA:
            scans += 1
            if scans > limits.max_jpeg_scans:
                raise ImageError(
                    f"the JPEG has more than {limits.max_jpeg_scans} scans; each is another pass over the image",
                    code="image_too_complex",
                )
            end = _SCAN_END.search(data, pos)
            if end is None:
                raise ImageError("the JPEG data ends inside a scan", code="image_truncated")
            if frame is not None:
                _check_scan(data, pos, end.start(), body, frame, tables, restart_interval)
                _record_scan(body, frame, coded)
            pos = end.start()


def _read_frame(body: bytes, marker: int, limits: ImageLimits) -> _Frame | None:
    if len(body) < 6 or len(body) < 6 + 3 * body[5]:
        return None
    height, width = struct.unpack_from(">HH", body, 1)
    _check_size(width, height, limits)
    sampling = {body[6 + 3 * i]: (body[7 + 3 * i] >> 4, body[7 + 3 * i] & 15) for i in range(body[5])}
    if not sampling or min(min(hv) for hv in sampling.values()) < 1:
        return None  # the decoder refuses it
    return _Frame(width, height, _DCT_FRAMES[marker], marker in _HUFFMAN_FRAMES, sampling)


def _read_huffman_tables(body: bytes, tables: dict[tuple[int, int], HuffmanTable]) -> int:
    """Store a DHT segment's tables (unparsed); returns how many it held."""
    i = count = 0
    while i + 17 <= len(body):
        counts = body[i + 1 : i + 17]
        symbols = body[i + 17 : i + 17 + sum(counts)]
        tables[(body[i] >> 4, body[i] & 15)] = (counts, symbols)
        i += 17 + len(symbols)
        count += 1
    return max(count, 1)


def _code_lengths(table: HuffmanTable) -> dict[int, int]:
    counts, symbols = table
    lengths: dict[int, int] = {}
    k = 0
    for bits, count in enumerate(counts, start=1):
        for symbol in symbols[k : k + count]:
            lengths.setdefault(symbol, bits)
        k += count
    return lengths


@functools.lru_cache(maxsize=64)
def _dc_bits(table: HuffmanTable | None) -> int:
    """Fewest bits a block's DC difference takes: a code plus as many bits as its category."""
    lengths = _code_lengths(table) if table else {}
    return min((bits + symbol for symbol, bits in lengths.items() if symbol <= 16), default=1)


@functools.lru_cache(maxsize=64)
def _ac_bits(table: HuffmanTable | None) -> int:
    """Fewest bits a block's 63 AC coefficients take: an end-of-block code, or at least four
    codes to reach the last coefficient (each code advances at most 16)."""
    lengths = _code_lengths(table) if table else {}
    if not lengths:
        return 1
    return min(lengths.get(0x00, 64), 4 * min(lengths.values()))


def _check_scan(
    data: bytes,
    start: int,
    end: int,
    header: bytes,
    frame: _Frame,
    tables: dict[tuple[int, int], HuffmanTable],
    restart_interval: int,
) -> None:
    """Refuse a scan whose data (``data[start:end]``) is too short for the blocks it must code."""
    count = header[0] if header else 0
    if not 1 <= count <= 4 or len(header) < 4 + 2 * count:
        return  # the decoder refuses it
    selected = [(header[1 + 2 * i], header[2 + 2 * i]) for i in range(count)]
    first, refine = header[1 + 2 * count], header[3 + 2 * count] >> 4
    h_max = max(h for h, _ in frame.sampling.values())
    v_max = max(v for _, v in frame.sampling.values())
    blocks: list[tuple[int, int]] = []  # (blocks, table selectors) per component of the scan
    for component, selectors in selected:
        h, v = frame.sampling.get(component, (0, 0))
        if count == 1:  # not interleaved: one block per unit
            units = math.ceil(frame.width * h / (8 * h_max)) * math.ceil(frame.height * v / (8 * v_max))
            blocks.append((units, selectors))
        else:  # interleaved: units are MCUs of h x v blocks per component
            units = math.ceil(frame.width / (8 * h_max)) * math.ceil(frame.height / (8 * v_max))
            blocks.append((units * h * v, selectors))
    expected = math.ceil(units / restart_interval) - 1 if restart_interval else 0
    if expected > 0:
        found = _count_restarts(data, start, end, expected)
        if found < expected:
            raise ImageError(
                f"the JPEG is truncated: a scan has {found} of its {expected} restart markers", code="image_truncated"
            )
    if not frame.huffman:
        return
    needed = 0
    for n, selectors in blocks:
        dc, ac = tables.get((0, selectors >> 4)), tables.get((1, selectors & 15))
        if not frame.progressive:
            needed += n * (_dc_bits(dc) + _ac_bits(ac))
        elif first == 0:  # progressive DC: a first scan codes a difference, a refinement one bit
            needed += n * (_dc_bits(dc) if refine == 0 else 1)
    if needed > 8 * (end - start):
        raise ImageError(
            f"the JPEG is truncated: a scan of {frame.width}x{frame.height} pixels needs at least "
            f"{needed // 8} bytes and has {end - start}",
            code="image_truncated",
        )


_UNCODED = 99  # no bit of the coefficient has been coded yet (a real successive-approximation bit is 0-13)


def _record_scan(header: bytes, frame: _Frame, coded: dict[int, list[int]]) -> None:
    """Note which coefficients of which components a scan codes, down to which bit (``Al``)."""
    count = header[0] if header else 0
    if not 1 <= count <= 4 or len(header) < 4 + 2 * count:
        return
    first, last, low = header[1 + 2 * count], header[2 + 2 * count], header[3 + 2 * count] & 15
    for i in range(count):
        bits = coded.setdefault(header[1 + 2 * i], [_UNCODED] * 64)
        if not frame.progressive:  # a sequential scan codes its components whole
            bits[:] = [0] * 64
        elif first <= last <= 63:
            bits[first : last + 1] = [low] * (last - first + 1)


def _check_complete(frame: _Frame, coded: dict[int, list[int]]) -> None:
    """At the end of the image every component must have been coded, every coefficient to bit 0.

    libjpeg decodes a JPEG that ends early on a scan boundary without a warning: the missing
    component is grey, the missing coefficients zero (a progressive image stays coarse).
    """
    for component in frame.sampling:
        bits = coded.get(component)
        if bits is None:
            raise ImageError(f"the JPEG is truncated: component {component} has no scan", code="image_truncated")
        if any(bits):
            uncoded = sum(bit == _UNCODED for bit in bits)
            raise ImageError(
                f"the JPEG is truncated: its scans leave {uncoded} coefficients of component {component} "
                f"uncoded and {64 - uncoded - bits.count(0)} without their last bits",
                code="image_truncated",
            )


def _count_restarts(data: bytes, start: int, end: int, enough: int) -> int:
    """RST markers in ``data[start:end]``, counted a MiB at a time until ``enough`` are found."""
    arr = np.frombuffer(data, np.uint8)
    found = 0
    for lo in range(start, end - 1, _CHUNK):
        hi = min(lo + _CHUNK, end - 1)
        found += int(np.count_nonzero((arr[lo:hi] == 0xFF) & ((arr[lo + 1 : hi + 1] & 0xF8) == 0xD0)))
        if found >= enough:
            break
    return found


def _to_rgb(img: Image.Image) -> np.ndarray:
    with contextlib.suppress(Exception):  # a broken EXIF block must not reject a decodable image
        ImageOps.exif_transpose(img, in_place=True)  # not in place, an upright image is copied whole
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if img.mode == "F":
        gray = np.clip(np.asarray(img) * (255.0 if np.asarray(img).max() <= 1.0 else 1.0), 0, 255)
        return np.ascontiguousarray(np.repeat(gray.astype(np.uint8)[:, :, None], 3, axis=2))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        img = Image.new("RGB", rgba.size, (255, 255, 255))
        img.paste(rgba, mask=rgba)  # composited on white through its alpha, without RGBA copies
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _from_array(arr: np.ndarray, limits: ImageLimits) -> np.ndarray:
    if arr.size == 0:
        raise ImageError("the array has no pixels", code="image_empty")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"expected an (H, W[, 1|3|4]) array, got shape {arr.shape}", code="image_unsupported_type")
    h, w = arr.shape[:2]
    if h * w > limits.max_pixels or max(h, w) > limits.max_side:
        raise ImageError(f"array is {w}x{h} pixels; too many", code="image_too_many_pixels")
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif arr.dtype in (np.float32, np.float64):
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        arr = np.clip(arr * scale, 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ImageError(f"unsupported array dtype {arr.dtype}", code="image_unsupported_type")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """An RGB uint8 array as JPEG bytes (used for the stored face chips)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else b""
