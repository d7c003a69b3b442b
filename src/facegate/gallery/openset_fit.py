"""The open-set model of the default embedder, as fitted on LFW View 1 (generated; do not edit).

Written by ``python bench/calibrate_openset.py --write``; see that script and
``docs/calibration.md``. Fitted with --draws 12 --seed 1.
"""

from facegate.gallery.openset import EvidenceCurve, OpenSetCalibration

OPEN_SET = OpenSetCalibration(
    curve=EvidenceCurve(
        similarity=(
            0.64348,
            0.83126,
            0.85369,
            0.86857,
            0.8798,
            0.88884,
            0.89645,
            0.90302,
            0.90885,
            0.91417,
            0.91909,
            0.92365,
            0.92794,
            0.93194,
            0.93564,
            0.93919,
            0.94238,
            0.94551,
            0.94828,
            0.95094,
        ),
        evidence=(
            0.0,
            0.25,
            0.5,
            0.75,
            1.0,
            1.25,
            1.5,
            1.75,
            2.0,
            2.25,
            2.5,
            2.75,
            3.0,
            3.25,
            3.5,
            3.75,
            4.0,
            4.25,
            4.5,
            4.75,
        ),
        tail_slope=73.062,
    ),
    pair_shift={
        "ok": {"ok": 0.0, "small": 0.0001, "greyscale": 0.0, "compressed": 0.0006, "blurry": 0.0013},
        "small": {"ok": 0.0001, "small": 0.0016, "greyscale": 0.0, "compressed": 0.0003, "blurry": 0.0036},
        "greyscale": {"ok": 0.0, "small": 0.0, "greyscale": 0.0023, "compressed": 0.0005, "blurry": 0.0},
        "compressed": {"ok": 0.0005, "small": 0.0001, "greyscale": 0.0004, "compressed": 0.002, "blurry": 0.0006},
        "blurry": {"ok": 0.0013, "small": 0.0036, "greyscale": 0.0, "compressed": 0.0007, "blurry": 0.0075},
    },
    margin_weights=((1.0, 0.0), (2.0, 0.25), (3.0, 0.5)),
    bonus_cap=0.5,
    bar_offsets={
        0.01: (
            (0.000, -0.044),
            (0.301, +0.008),
            (0.699, -0.004),
            (1.000, -0.063),
            (1.477, -0.091),
            (2.000, -0.198),
            (2.477, -0.362),
            (3.000, -0.585),
        ),
        0.05: (
            (0.000, -0.010),
            (0.301, +0.016),
            (0.699, -0.015),
            (1.000, -0.047),
            (1.477, -0.076),
            (2.000, -0.130),
            (2.477, -0.270),
            (3.000, -0.386),
        ),
    },
    confidence=(3.1755, -4.2767),
)
