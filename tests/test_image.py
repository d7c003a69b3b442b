"""Image decoding: formats, orientation, conversions, and the typed errors for bad input."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import GROUP, LFW, NO_FACE
from facegate.vision.errors import FacegateError, ImageError
from facegate.vision.image import ImageLimits, decode_image, load_image

PHOTO = LFW / "Colin_Powell" / "Colin_Powell_0001.jpg"


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(PHOTO).convert("RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_accepted_formats_decode_to_rgb_uint8(photo, fmt):
    arr = decode_image(encode(photo, fmt))
    assert arr.shape == (photo.height, photo.width, 3)
    assert arr.dtype == np.uint8


def test_path_bytes_and_array_sources_agree(photo):
    from_path = load_image(PHOTO)
    assert np.array_equal(from_path, load_image(PHOTO.read_bytes()))
    assert np.array_equal(from_path, load_image(str(PHOTO)))
    assert np.array_equal(load_image(np.asarray(photo)), np.asarray(photo))


def test_grayscale_rgba_and_16bit_become_rgb(photo):
    gray = decode_image(encode(photo.convert("L"), "PNG"))
    assert gray.shape[2] == 3 and np.array_equal(gray[..., 0], gray[..., 2])
    rgba = photo.convert("RGBA")
    rgba.putalpha(0)  # fully transparent: composited on white
    assert decode_image(encode(rgba, "PNG")).min() == 255
    deep = Image.fromarray((np.asarray(photo.convert("L"), np.uint16) * 257).astype(np.uint16))
    assert deep.mode.startswith("I;16")
    out = decode_image(encode(deep, "PNG"))
    assert out.dtype == np.uint8
    assert abs(int(out[..., 0].mean()) - int(np.asarray(photo.convert("L")).mean())) <= 1


def test_exif_orientation_is_applied(photo):
    upright = photo.crop((0, 0, 250, 200))
    stored = upright.rotate(90, expand=True)  # stored turned 90 degrees counter-clockwise ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... with the tag that says "rotate 90 clockwise to display"
    arr = decode_image(encode(stored, "JPEG", exif=exif, quality=95))
    assert arr.shape[:2] == (upright.height, upright.width)
    assert np.abs(arr.astype(int) - np.asarray(upright, dtype=int)).mean() < 6


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    bomb = _png_header_only(60_000, 60_000)  # 3.6 gigapixels declared in 100 bytes
    with pytest.raises(ImageError) as err:
        decode_image(bomb)
    assert err.value.code == "image_too_many_pixels"


def test_bomb_made_by_a_real_encoder_is_refused():
    big = Image.new("L", (8000, 8000))  # 64 MP of zeros compresses to ~60 kB
    data = encode(big, "PNG", optimize=True)
    assert len(data) < 200_000
    with pytest.raises(ImageError) as err:
        decode_image(data)
    assert err.value.code == "image_too_many_pixels"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "image_empty"),
        (b"hello, I am plain text, not a picture", "image_unsupported_type"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "image_unsupported_type"),
        (b"PK\x03\x04" + b"\0" * 200, "image_unsupported_type"),
        (bytes(range(256)) * 40, "image_unsupported_type"),
    ],
)
def test_non_images_raise_typed_errors(data, code):
    with pytest.raises(ImageError) as err:
        decode_image(data)
    assert err.value.code == code
    assert isinstance(err.value, FacegateError)


def test_truncated_jpeg_raises_truncated():
    data = PHOTO.read_bytes()
    with pytest.raises(ImageError) as err:
        decode_image(data[: len(data) // 2])
    assert err.value.code == "image_truncated"


def test_corrupt_jpeg_body_raises_typed_error():
    data = bytearray(NO_FACE.read_bytes())
    data[2:40] = b"\xff" * 38  # wreck the JFIF segment headers
    with pytest.raises(ImageError) as err:
        decode_image(bytes(data))
    assert err.value.code in {"image_corrupt", "image_unsupported_type", "image_truncated"}


def test_gif_is_not_an_accepted_format(photo):
    with pytest.raises(ImageError) as err:
        decode_image(encode(photo, "GIF"))
    assert err.value.code == "image_unsupported_type"


def test_byte_limit_is_enforced_for_bytes_and_paths():
    tiny = ImageLimits(max_bytes=1000)
    with pytest.raises(ImageError) as err:
        decode_image(PHOTO.read_bytes(), tiny)
    assert err.value.code == "image_too_large"
    with pytest.raises(ImageError) as err:
        load_image(PHOTO, tiny)
    assert err.value.code == "image_too_large"


def test_missing_path_and_wrong_types(tmp_path):
    with pytest.raises(ImageError) as err:
        load_image(tmp_path / "nope.jpg")
    assert err.value.code == "image_not_found"
    with pytest.raises(ImageError) as err:
        load_image(12345)  # type: ignore[arg-type]
    assert err.value.code == "image_unsupported_type"
    with pytest.raises(ImageError) as err:
        load_image(np.zeros((4, 4, 7), np.uint8))
    assert err.value.code == "image_unsupported_type"
    with pytest.raises(ImageError) as err:
        load_image(np.zeros((0, 5, 3), np.uint8))
    assert err.value.code == "image_empty"


def test_fast_jpeg_path_matches_pillow(photo):
    data = encode(photo, "JPEG", quality=92)
    ours = decode_image(data)
    reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=int)
    assert ours.shape == reference.shape
    assert np.abs(ours.astype(int) - reference).mean() < 1.0
    # trailing bytes after the end-of-image marker take Pillow's path, with the same pixels
    assert np.abs(decode_image(data + b"\0\0junk").astype(int) - reference).mean() < 1e-9


def opencv_rgb(data: bytes) -> np.ndarray:
    """The previous JPEG decoder: OpenCV, which applies EXIF orientation itself."""
    flag = getattr(cv2, "IMREAD_COLOR_RGB", None)
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if flag is None else flag)
    return arr if flag is not None else cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def test_real_jpegs_decode_exactly_as_opencv_did():
    photos = sorted(LFW.parent.glob("**/*.jpg"))  # every photo in tests/data (LFW, dlib, face-api, CompreFace)
    assert len(photos) >= 20 and GROUP in photos
    for path in photos:
        data = path.read_bytes()
        assert np.array_equal(decode_image(data), opencv_rgb(data)), path
    progressive = encode(Image.open(GROUP), "JPEG", quality=90, progressive=True, optimize=True)
    assert np.array_equal(decode_image(progressive), opencv_rgb(progressive))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_as_before(photo, orientation):
    stored = photo.crop((0, 0, 250, 180))  # not square: a wrong turn changes the shape
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "JPEG", exif=exif, quality=92)
    ours = decode_image(data)
    assert np.array_equal(ours, opencv_rgb(data))
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"), dtype=int)
    assert ours.shape == upright.shape
    assert np.abs(ours.astype(int) - upright).mean() < 1.0


def test_cmyk_and_grey_jpegs_decode_as_before(photo):
    cmyk = encode(photo.convert("CMYK"), "JPEG", quality=92)
    assert np.array_equal(decode_image(cmyk), np.asarray(Image.open(io.BytesIO(cmyk)).convert("RGB")))
    grey = encode(photo.convert("L"), "JPEG", quality=92)
    assert np.array_equal(decode_image(grey), opencv_rgb(grey))


def test_multi_picture_jpeg_decodes_its_first_picture(photo):
    mpo = encode(photo, "MPO", save_all=True, append_images=[photo.rotate(90)])
    first = Image.open(io.BytesIO(mpo))
    assert first.format == "MPO" and getattr(first, "n_frames", 1) == 2
    assert np.array_equal(decode_image(mpo), np.asarray(first.convert("RGB")))


def test_lying_cmyk_jpeg_is_truncated(photo):
    data = encode(photo.convert("CMYK"), "JPEG", quality=92)
    i = data.index(b"\xff\xc0")
    lie = data[: i + 5] + struct.pack(">H", photo.height * 3 // 2) + data[i + 7 :]
    with pytest.raises(ImageError) as err:
        decode_image(lie)
    assert err.value.code == "image_truncated"
