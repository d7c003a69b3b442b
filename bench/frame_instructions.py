"""CPU instructions per recognised frame through the service's recognise path, counted by callgrind.

    python bench/frame_instructions.py [--frames 30] [--ref REV]

Timing a 6 ms frame on a shared 2-core machine moves by 10-20% from run to run (the same
code, before_after.py's A/A runs); an instruction count does not. This runs the service's
whole recognise path — decode, detect, landmarks, align, quality, embed, index search,
decision — on a 640x480 JPEG with one face against an enrolled collection, under
``valgrind --tool=callgrind``, once with 0 frames and once with ``--frames`` frames: the
difference over the frame count is the instructions one frame costs (start-up and model
loading cancel out). Every model runs on one thread (no spinning workers), and hashing is
seeded, so the count repeats.

With ``--ref REV`` the same is measured on a temporary worktree of REV (its own service
API: ``facegate.api.service.FaceService`` before the service tier existed), and both are
printed with their ratio. Last line: ``instructions_per_frame=N [..._before=B ratio=R]``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "lfw_subset10_krasserm" / "Tony_Blair" / "Tony_Blair_0004.jpg"
ENROL = sorted((ROOT / "tests" / "data" / "lfw_subset10_krasserm" / "Tony_Blair").glob("*.jpg"))[:3]

# Runs inside valgrind, against whichever facegate PYTHONPATH names; prints nothing on success.
WORKLOAD = r"""
import io, sys, tempfile
from PIL import Image
frames, photo, enrol = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
face = Image.open(photo).convert("RGB")
canvas = Image.new("RGB", (640, 480), (110, 110, 110))
canvas.paste(face, ((640 - face.width) // 2, (480 - face.height) // 2))
buf = io.BytesIO(); canvas.save(buf, "JPEG", quality=85); jpeg = buf.getvalue()
db = f"sqlite:///{tempfile.mkdtemp()}/f.db"
try:  # the service tier
    from facegate.config import Settings
    from facegate.service.runtime import Runtime
    rt = Runtime.build(Settings().with_values(database_url=db, model_threads=1))
    found = rt.enrolment.faces([(p, open(p, "rb").read()) for p in enrol])
    rt.enrolment.enrol("Tony", found, "default")
    recognize = rt.recognition.recognize
except ImportError:  # before it: FaceService in the API package
    from facegate.api.service import FaceService
    from facegate.api.settings import Settings
    svc = FaceService(Settings(database_url=db, model_threads=1))
    found = svc.enrol_faces([(p, open(p, "rb").read()) for p in enrol])
    svc.store.enroll("Tony", svc.templates_from(found), model_id=svc.model_id)
    recognize = svc.recognize
first = recognize(jpeg)  # warm: models loaded, index built, caches filled
assert first.faces[0].decision.name == "Tony", first
for _ in range(frames):
    recognize(jpeg)
"""


def instructions(src: Path, frames: int) -> int:
    """Instructions callgrind counts for the workload with ``frames`` frames, against ``src``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "FACEGATE_DATA_DIR": tempfile.mkdtemp(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            WORKLOAD,
            str(frames),
            str(PHOTO),
            *map(str, ENROL),
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the workload failed under valgrind:\n{done.stderr[-3000:]}")
        totals = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M) or re.search(
            r"^totals:\s+(\d+)", out.read_text(), re.M
        )
        return int(totals.group(1))


def per_frame(src: Path, frames: int) -> float:
    base = instructions(src, 0)
    loaded = instructions(src, frames)
    return (loaded - base) / frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--ref", help="also measure this commit (a temporary worktree), and print the ratio")
    args = ap.parse_args()
    after = per_frame(ROOT / "src", args.frames)
    print(f"after: {after / 1e6:.2f} M instructions per frame", flush=True)
    line = f"instructions_per_frame={after:.0f}"
    if args.ref:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "tree"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.ref], check=True)
            try:
                before = per_frame(tree / "src", args.frames)
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
        print(f"before ({args.ref}): {before / 1e6:.2f} M instructions per frame", flush=True)
        line += f" instructions_per_frame_before={before:.0f} ratio={after / before:.4f}"
    print(line)


if __name__ == "__main__":
    main()
