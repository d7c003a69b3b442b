"""Simulated open-set galleries on cached LFW descriptors (shared by the calibration and the bench).

A *face* here is one LFW image under one condition (row ``k`` of a condition's cache). A
gallery draw picks N people and up to T template faces of each; its genuine probes are the
people's other images; strangers are images of people not enrolled. Templates are
flip-averaged descriptors (as enrolment makes them), probes plain ones (as a live frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegate.gallery.openset import QualityClassRules, quality_class
from facegate.vision.types import Quality
from openset_data import CONDITIONS, load


@dataclass
class Faces:
    """Every cached face of LFW under every condition, as flat arrays (one row per image × condition)."""

    person: np.ndarray  # person label
    image: np.ndarray  # image id (the same across conditions)
    condition: np.ndarray  # condition name
    template: np.ndarray  # flip-averaged descriptors (N, 128)
    probe: np.ndarray  # plain descriptors
    qclass: np.ndarray  # quality class
    quality: np.ndarray  # the cache's quality rows
    quality_fields: list[str]

    def where(self, mask: np.ndarray) -> np.ndarray:
        return np.flatnonzero(mask)


def quality_of(row: np.ndarray, fields: list[str]) -> Quality:
    v = dict(zip(fields, (float(x) for x in row), strict=True))
    return Quality(
        v["score"],
        (),
        v["size"],
        v["sharpness"],
        v["brightness"],
        v["yaw"],
        v["pitch"],
        v["roll"],
        v["colour"],
        v["blockiness"],
    )


def load_faces(cache: Path, rules: QualityClassRules | None = None) -> Faces:
    rules = rules or QualityClassRules()
    parts = []
    for condition in CONDITIONS:
        if not (cache / f"lfw-{condition}.npz").exists():
            print(f"  (no cache for {condition}: run bench/openset_data.py)")
            continue
        d = load(cache, condition)
        fields = [str(f) for f in d["quality_fields"]]
        classes = np.array([quality_class(quality_of(r, fields), rules) for r in d["quality"]])
        ids = np.array([f"{n}/{i}" for n, i in zip(d["names"], d["indices"], strict=True)])
        parts.append((d, fields, classes, ids, condition))
    return Faces(
        person=np.concatenate([p[0]["names"] for p in parts]),
        image=np.concatenate([p[3] for p in parts]),
        condition=np.concatenate([np.full(len(p[3]), p[4]) for p in parts]),
        template=np.concatenate([p[0]["flipped"] for p in parts]),
        probe=np.concatenate([p[0]["plain"] for p in parts]),
        qclass=np.concatenate([p[2] for p in parts]),
        quality=np.concatenate([p[0]["quality"] for p in parts]),
        quality_fields=parts[0][1],
    )


@dataclass
class Draw:
    """One gallery: template rows grouped by person (``starts``), and its probes."""

    templates: np.ndarray  # face rows, grouped by person
    starts: np.ndarray  # first template row of each person
    people: np.ndarray  # person labels, in gallery order
    genuine: np.ndarray  # probe face rows of enrolled people
    genuine_owner: np.ndarray  # their gallery index
    strangers: np.ndarray  # probe face rows of people never enrolled

    @property
    def shape(self) -> tuple[int, float]:
        return len(self.people), len(self.templates) / max(1, len(self.people))


def top_two(
    faces: Faces, draw: Draw, probes: np.ndarray, pair_shift: dict | None = None, *, flip_templates: bool = True
) -> tuple[np.ndarray, ...]:
    """Per probe: the best and second-best person's similarity, each template's first lessened by the
    shift of its (probe class, template class) pair as the gallery search does, and the best's index."""
    best = np.full(len(probes), -2.0)
    second = np.full(len(probes), -2.0)
    who = np.zeros(len(probes), int)
    matrix = (faces.template if flip_templates else faces.probe)[draw.templates]
    template_classes = faces.qclass[draw.templates]
    probe_classes = faces.qclass[probes]
    for probe_class in np.unique(probe_classes):
        row = (pair_shift or {}).get(str(probe_class), {})
        penalty = np.array([row.get(str(c), 0.0) for c in template_classes])
        group = np.flatnonzero(probe_classes == probe_class)
        for lo in range(0, len(group), 4096):
            at = group[lo : lo + 4096]
            sims = faces.probe[probes[at]] @ matrix.T - penalty  # (probes, templates)
            per_person = np.maximum.reduceat(sims, draw.starts, axis=1)
            if per_person.shape[1] >= 2:
                top = np.argpartition(-per_person, 1, axis=1)[:, :2]
                a = per_person[np.arange(len(at)), top[:, 0]]
                b = per_person[np.arange(len(at)), top[:, 1]]
                best[at] = np.maximum(a, b)
                second[at] = np.minimum(a, b)
                who[at] = np.where(b > a, top[:, 1], top[:, 0])
            else:
                best[at] = per_person[:, 0]
    return best, second, who


def draw_gallery(
    faces: Faces,
    rng: np.random.Generator,
    eligible: np.ndarray,
    n: int,
    t: int,
    *,
    template_rows: np.ndarray,
    stranger_rows: np.ndarray,
    probe_rows: np.ndarray,
    degraded_share: float = 0.0,
) -> Draw:
    """N people from ``eligible`` (labels), up to T templates each from ``template_rows`` (original
    condition; each replaced by a random degraded copy with probability ``degraded_share``),
    genuine probes = the people's other images among ``probe_rows``; strangers = ``stranger_rows``
    of people not drawn."""
    chosen = rng.choice(eligible, size=n, replace=False)
    index = {p: i for i, p in enumerate(chosen)}
    by_person: dict[str, list[int]] = {}
    for row in template_rows:
        p = faces.person[row]
        if p in index:
            by_person.setdefault(p, []).append(int(row))
    degraded_of = _degraded_copies(faces)
    templates, starts, used_images = [], [], set()
    for p in chosen:
        rows = by_person.get(p, [])
        rng.shuffle(rows)
        keep = rows[:t] if len(rows) <= 1 else rows[: min(t, len(rows) - 1)]
        starts.append(len(templates))
        for row in keep:
            used_images.add(faces.image[row])
            if degraded_share and rng.random() < degraded_share:
                row = int(rng.choice(degraded_of[faces.image[row]]))
            templates.append(row)
    genuine = [int(r) for r in probe_rows if faces.person[r] in index and faces.image[r] not in used_images]
    enrolled = set(chosen)
    strangers = np.array([int(r) for r in stranger_rows if faces.person[r] not in enrolled])
    return Draw(
        templates=np.array(templates, int),
        starts=np.array(starts, int),
        people=chosen,
        genuine=np.array(genuine, int),
        genuine_owner=np.array([index[faces.person[r]] for r in genuine], int),
        strangers=strangers,
    )


_DEGRADED_CACHE: dict[int, dict[str, np.ndarray]] = {}


def _degraded_copies(faces: Faces) -> dict[str, np.ndarray]:
    key = id(faces)
    if key not in _DEGRADED_CACHE:
        rows = np.flatnonzero(faces.condition != "original")
        out: dict[str, list[int]] = {}
        for r in rows:
            out.setdefault(faces.image[r], []).append(int(r))
        _DEGRADED_CACHE[key] = {k: np.array(v) for k, v in out.items()}
    return _DEGRADED_CACHE[key]


def expected_runner_up(n: int, t: float) -> float:
    return math.log10(max(1, n) * max(1.0, t))
