"""What batching faces into one embedding run would save: ms per face at batch 1, 2, 4, 8.

    python bench/embed_batch.py [--threads 1] [--repeats 20]

Real aligned 150x150 face chips (``tests/data/dlib_johns``) through the onnxruntime ResNet
embedder with the service's default of one thread per model call. Medians of ``--repeats``.
Last line: ``batch1_ms_per_face=A batch8_ms_per_face=B``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facegate.vision.engine import EngineConfig, FaceEngine

CHIPS = Path(__file__).resolve().parents[1] / "tests" / "data" / "dlib_johns"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    paths = sorted(CHIPS.glob("*/*.jpg"))[:8]
    chips = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    assert chips.shape[1:] == (150, 150, 3), chips.shape
    embed = FaceEngine(EngineConfig(num_threads=args.threads)).embedder.embed_raw
    embed(chips)  # load the model
    per_face = {}
    for n in (1, 2, 4, 8):
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            embed(chips[:n])
            times.append((time.perf_counter() - started) * 1000 / n)
        per_face[n] = statistics.median(times)
        print(f"batch {n}: {per_face[n]:.2f} ms per face", flush=True)
    print(f"batch1_ms_per_face={per_face[1]:.2f} batch8_ms_per_face={per_face[8]:.2f}")


if __name__ == "__main__":
    main()
