"""Service settings: one object, from ``FACEGATE_*`` environment variables and ``facegate serve`` flags."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields, replace

from facegate.vision.errors import FacegateError

AUTH_MODES = ("auto", "required", "off")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """What ``facegate serve`` runs with. Every field can be set as ``FACEGATE_<FIELD>``."""

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = ""  # empty: SQLite in the data directory
    # auth: "auto" requires an API key whenever the server is bound to a non-loopback address
    auth: str = "auto"
    cors_origins: tuple[str, ...] = ()  # CORS is off unless origins are named
    max_request_bytes: int = 30 * 1024 * 1024
    max_image_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    max_faces: int = 50  # per image: the largest faces are kept
    max_zip_bytes: int = 200 * 1024 * 1024
    max_zip_entries: int = 2_000
    max_zip_uncompressed_bytes: int = 1024 * 1024 * 1024
    max_zip_ratio: float = 100.0  # uncompressed / compressed, per entry
    max_stream_frame_bytes: int = 4 * 1024 * 1024
    store_chips: bool = True
    flip: bool = False
    match_threshold: float | None = None
    # frames processed at once (scheduler worker threads), and the threads each model call
    # uses (onnxruntime / LiteRT intra-op). On 2 cores, 2 x 1 gave 88% of one client's frame
    # rate to 100 streaming clients, 1 x 2 gave 71% (bench/api.py; README "Process model").
    inference_threads: int = 2
    model_threads: int = 1
    log_level: str = "info"

    def __post_init__(self) -> None:
        if self.auth not in AUTH_MODES:
            raise FacegateError(f"auth must be one of {AUTH_MODES}; got {self.auth!r}", code="bad_config")
        if self.inference_threads < 1:
            raise FacegateError("inference_threads must be at least 1", code="bad_config")
        if self.model_threads < 1:
            raise FacegateError("model_threads must be at least 1", code="bad_config")

    @property
    def auth_required(self) -> bool:
        """Whether every API call needs a key: always when bound beyond loopback, unless turned off."""
        if self.auth == "required":
            return True
        if self.auth == "off":
            return False
        return not _is_loopback(self.host)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Defaults, then ``FACEGATE_*`` variables, then ``overrides`` (flags) that are not None."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for f in fields(cls):
            raw = environ.get(f"FACEGATE_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _parse(f.name, str(f.type), raw)
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def _parse(name: str, kind: str, raw: str):
    raw = raw.strip()
    try:
        if "tuple" in kind:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if kind.startswith("bool"):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes", "on")
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw) if raw else None
        return raw
    except ValueError:
        raise FacegateError(f"FACEGATE_{name.upper()}={raw!r} is not a valid {kind}", code="bad_config") from None
