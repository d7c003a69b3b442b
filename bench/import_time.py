"""Time ``python -c "import facegate"`` and list any model library it pulls in.

    python bench/import_time.py [--runs 7]

Compares with ``python -c "pass"`` (interpreter start-up alone) in the same run.
Last line: ``import_s=X interpreter_s=Y model_modules=N``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("dlib", "onnxruntime", "ai_edge_litert", "onnx", "cv2")


def wall(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    probe = f"import sys, facegate; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    bare = wall("pass", args.runs)
    imported = wall("import facegate", args.runs)
    print(f"model libraries imported: {loaded or 'none'}")
    print(f"import_s={imported:.3f} interpreter_s={bare:.3f} model_modules={len(loaded.split(',')) if loaded else 0}")


if __name__ == "__main__":
    main()
