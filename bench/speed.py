"""Per-stage latency and end-to-end frames/s, side by side with face_recognition.

    python bench/speed.py [--faces DIR] [--repeat 40]

Frames are JPEGs at 640x480 and 1280x720 holding 1 or 5 real photos (LFW subset),
built once and shared by both pipelines. facegate's end-to-end time covers JPEG decode,
detection, landmarks, alignment, embedding and the gallery match (1,000 templates).
face_recognition runs its defaults on the same JPEG bytes: ``load_image_file`` +
``face_locations`` (HOG, upsample 1) + ``face_encodings`` (5-point landmarks, dlib's
ResNet through dlib). Both run in this process, one after the other, on the same frames;
medians are reported. Needs ``pip install --no-deps face-recognition``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facegate.gallery.decision import Decision, DecisionPolicy
from facegate.gallery.index import Gallery
from facegate.vision.alignment import dlib_like_box
from facegate.vision.engine import FaceEngine
from facegate.vision.image import decode_image

SIZES = {"640x480": (640, 480), "1280x720": (1280, 720)}


def build_frame(photos: list[Path], size: tuple[int, int], n_faces: int) -> bytes:
    """A JPEG of the given size with ``n_faces`` photos laid out in a grid on grey."""
    w, h = size
    canvas = Image.new("RGB", size, (96, 96, 96))
    cols = 1 if n_faces == 1 else 3
    rows = 1 if n_faces == 1 else 2
    cell = min(w // cols, h // rows)
    side = int(cell * (0.75 if n_faces == 1 else 0.95))
    for i in range(n_faces):
        photo = Image.open(photos[i]).convert("RGB").resize((side, side))
        r, c = divmod(i, cols)
        x = (w - cols * cell) // 2 + c * cell + (cell - side) // 2
        y = (h - rows * cell) // 2 + r * cell + (cell - side) // 2
        canvas.paste(photo, (x, y))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def median_ms(fn, repeat: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def identify(gallery: Gallery, embeddings: np.ndarray) -> list[Decision]:
    """The match step of every frame: the gallery's candidates, decided by the one decision policy."""
    policy = DecisionPolicy.for_model(gallery.model_id)
    return [policy.decide(candidates) for candidates in gallery.search(embeddings)]


def facegate_stages(engine: FaceEngine, gallery: Gallery, jpeg: bytes, repeat: int) -> dict[str, float]:
    """Stage medians measured alone (``*_ms``) and inside the running pipeline (``pipe_*``).

    Alone, a stage runs over and over with warm caches and idle cores; inside the
    pipeline each stage follows the others (the ResNet's 22 MB of weights evict the
    landmark model, thread pools hand the cores over), which is what a frame really costs.
    """
    image = decode_image(jpeg)
    dets = engine.detector.detect(image)
    aligner = engine.aligner
    boxes = [dlib_like_box(d, engine.config.detector) for d in dets]
    shapes = [aligner.shape(image, b) for b in boxes]
    chips = np.stack(aligner.chips(image, shapes))
    vectors = engine.embed_chips(chips)
    n = max(1, len(dets))
    stages = {
        "faces": len(dets),
        "decode_ms": median_ms(lambda: decode_image(jpeg), repeat),
        "detect_ms": median_ms(lambda: engine.detector.detect(image), repeat),
        "landmarks_ms_per_face": median_ms(lambda: [aligner.shape(image, b) for b in boxes], repeat) / n,
        "align_ms_per_face": median_ms(lambda: aligner.chips(image, shapes), repeat) / n,
        "embed_ms_per_face": median_ms(lambda: engine.embed_chips(chips), repeat) / n,
        "match_ms": median_ms(lambda: identify(gallery, vectors), repeat),
    }
    stages.update(pipeline_stages(engine, gallery, jpeg, repeat))
    return stages


def pipeline_stages(engine: FaceEngine, gallery: Gallery, jpeg: bytes, repeat: int) -> dict[str, float]:
    """End-to-end frames through ``FaceEngine.analyze`` + gallery search and decision, and the same
    sequence with a timer between stages."""

    def end_to_end() -> None:
        faces = engine.analyze(jpeg)
        identify(gallery, np.stack([f.embedding for f in faces]))

    e2e = median_ms(end_to_end, repeat)
    marks: dict[str, list[float]] = {k: [] for k in ("decode", "detect", "landmarks", "align", "embed", "match")}
    aligner = engine.aligner
    for _ in range(repeat):
        t0 = time.perf_counter()
        image = decode_image(jpeg)
        t1 = time.perf_counter()
        dets = engine.detector.detect(image)
        t2 = time.perf_counter()
        shapes = [aligner.shape(image, dlib_like_box(d, engine.config.detector)) for d in dets]
        t3 = time.perf_counter()
        chips = np.stack(aligner.chips(image, shapes))
        t4 = time.perf_counter()
        vectors = engine.embed_chips(chips)
        t5 = time.perf_counter()
        identify(gallery, vectors)
        t6 = time.perf_counter()
        for key, a, b in zip(marks, (t0, t1, t2, t3, t4, t5), (t1, t2, t3, t4, t5, t6), strict=True):
            marks[key].append((b - a) * 1000)
    n = max(1, len(chips))
    out = {f"pipe_{k}_ms": statistics.median(v) for k, v in marks.items()}
    for key in ("landmarks", "align", "embed"):
        out[f"pipe_{key}_ms"] /= n
    out["e2e_ms"] = e2e
    return out


def face_recognition_e2e(jpeg: bytes, repeat: int) -> tuple[float, int]:
    import face_recognition

    def run() -> int:
        img = face_recognition.load_image_file(io.BytesIO(jpeg))
        locations = face_recognition.face_locations(img)
        face_recognition.face_encodings(img, locations)
        return len(locations)

    found = run()
    return median_ms(run, max(3, repeat // 8)), found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path("../shared/data/faces/lfw_subset10_krasserm"))
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    people = sorted(d for d in args.faces.iterdir() if d.is_dir())
    photos = [sorted(d.glob("*.jpg"))[0] for d in people]

    engine = FaceEngine()
    engine.warmup()
    rng = np.random.default_rng(0)
    gallery = Gallery(engine.model_id)
    for i in range(100):  # 100 people x 10 templates of random unit vectors
        person = gallery.add_person(f"synthetic {i}")
        gallery.add_templates(person.id, rng.normal(size=(10, 128)).astype(np.float32))

    results = {}
    header = (
        f"{'frame':15s} {'faces':>5s} | {'decode':>6s} {'detect':>6s} {'lmk/f':>6s} {'align/f':>7s} "
        f"{'embed/f':>7s} {'match':>6s} | {'e2e ms':>7s} {'fps':>6s} | {'face_rec ms':>11s} {'faces':>5s} {'ratio':>6s}"
    )
    print("stage medians in ms, each stage alone / [inside the running pipeline]")
    print(header)
    for label, size in SIZES.items():
        for n_faces in (1, 5):
            jpeg = build_frame(photos, size, n_faces)
            s = facegate_stages(engine, gallery, jpeg, args.repeat)
            fr_ms, fr_found = face_recognition_e2e(jpeg, args.repeat)
            key = f"{label}_{n_faces}face"
            results[key] = (s, fr_ms)
            print(
                f"{key:15s} {s['faces']:5d} | {s['decode_ms']:6.2f} {s['detect_ms']:6.2f} "
                f"{s['landmarks_ms_per_face']:6.2f} {s['align_ms_per_face']:7.2f} {s['embed_ms_per_face']:7.2f} "
                f"{s['match_ms']:6.2f} | {s['e2e_ms']:7.2f} {1000 / s['e2e_ms']:6.1f} | {fr_ms:11.1f} "
                f"{fr_found:5d} {fr_ms / s['e2e_ms']:6.1f}x\n"
                f"{'':15s} {'':5s} | [{s['pipe_decode_ms']:5.2f} {s['pipe_detect_ms']:6.2f} "
                f"{s['pipe_landmarks_ms']:6.2f} "
                f"{s['pipe_align_ms']:7.2f} {s['pipe_embed_ms']:7.2f} {s['pipe_match_ms']:6.2f}]",
                flush=True,
            )
    base, fr_ms = results["640x480_1face"]
    print(
        f"embed_ms_per_face={base['embed_ms_per_face']:.2f} e2e_fps_640x480_1face={1000 / base['e2e_ms']:.1f} "
        f"speedup_vs_face_recognition={fr_ms / base['e2e_ms']:.1f}"
    )


if __name__ == "__main__":
    main()
