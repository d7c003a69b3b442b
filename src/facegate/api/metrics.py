"""Prometheus metrics of the service, in a registry of its own (one per app)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    """Request latency, frames, faces, matches, unknowns, dropped frames and the queue depth."""

    registry: CollectorRegistry
    requests: Histogram
    frames: Counter
    frames_dropped: Counter
    faces: Counter
    matches: Counter
    unknowns: Counter
    queue_depth: Gauge
    streams: Gauge

    @classmethod
    def create(cls) -> Metrics:
        r = CollectorRegistry()
        return cls(
            registry=r,
            requests=Histogram(
                "facegate_request_seconds",
                "HTTP request latency",
                ["method", "route", "status"],
                registry=r,
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            ),
            frames=Counter("facegate_frames_total", "Images and stream frames processed", ["source"], registry=r),
            frames_dropped=Counter(
                "facegate_frames_dropped_total", "Stream frames replaced by a newer one before processing", registry=r
            ),
            faces=Counter("facegate_faces_total", "Faces found", registry=r),
            matches=Counter("facegate_matches_total", "Faces matched to a person", registry=r),
            unknowns=Counter("facegate_unknowns_total", "Faces not matched (unknown)", registry=r),
            queue_depth=Gauge("facegate_queue_depth", "Clients waiting for an inference turn", registry=r),
            streams=Gauge("facegate_streams", "Open WebSocket streams", registry=r),
        )

    def count_decisions(self, source: str, statuses: list[str]) -> None:
        """Count one processed image and its faces' decisions."""
        self.frames.labels(source).inc()
        self.faces.inc(len(statuses))
        matched = sum(s == "match" for s in statuses)
        self.matches.inc(matched)
        self.unknowns.inc(len(statuses) - matched)
