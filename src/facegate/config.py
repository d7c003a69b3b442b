"""One configuration for the CLI and the server: defaults < TOML file < ``FACEGATE_*`` variables < flags.

Every setting lives in one section (engine, decision, store, limits, server, stream, cameras, videos,
events) and has one name, unique across sections, so ``FACEGATE_<NAME>`` sets it and so does ``name = ...``
under ``[section]`` in the TOML file named by ``FACEGATE_CONFIG`` (or ``--config``).
:func:`load_settings` reads them once and records where each value came from, which
``facegate config`` prints (secrets masked).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from facegate.core.errors import ConfigError
from facegate.core.providers import session_providers

AUTH_MODES = ("auto", "required", "off")
DETECTORS = ("blazeface", "hog", "cnn")
EMBEDDERS = ("onnx", "dlib")
SECRET = {"secret": True}


@dataclass(frozen=True)
class EngineSettings:
    """The models and how they run. ``flip`` and ``embedder`` change the embeddings (the model id)."""

    detector: str = "blazeface"
    embedder: str = "onnx"
    flip: bool = False
    match_threshold: float | None = None  # None: the calibrated threshold of the model
    # frames processed at once (scheduler worker threads), and the threads each model call
    # uses (onnxruntime / LiteRT intra-op). On 2 cores, 2 x 1 gave 88% of one client's frame
    # rate to 100 streaming clients, 1 x 2 gave 71% (bench/api.py; README "Process model").
    inference_threads: int = 2
    model_threads: int = 1
    # onnxruntime's execution provider for the embedder: cpu, cuda, tensorrt, openvino or rocm (the
    # onnxruntime build that has it installed: core/providers.py). The detector (LiteRT) stays on the CPU.
    execution_provider: str = "cpu"

    def __post_init__(self) -> None:
        _one_of("detector", self.detector, DETECTORS)
        _one_of("embedder", self.embedder, EMBEDDERS)
        if self.execution_provider != "cpu":  # is it in the installed onnxruntime? (raises, naming the package)
            session_providers(self.execution_provider)
        _at_least("inference_threads", self.inference_threads, 1)
        _at_least("model_threads", self.model_threads, 1)
        if self.match_threshold is not None and not -1.0 <= self.match_threshold <= 1.0:
            raise ConfigError(f"match_threshold {self.match_threshold} is outside [-1, 1]")


@dataclass(frozen=True)
class StoreSettings:
    """Where people and templates are kept."""

    data_dir: str = ""  # empty: the user's data directory (e.g. ~/.local/share/facegate)
    database_url: str = field(default="", metadata=SECRET)  # empty: SQLite in the data directory
    store_chips: bool = True
    # the key ring of external-reference hashes (store/refkeys.py); empty: beside an SQLite file
    # (facegate.db.refkey), else facegate.refkey in the data directory. Back it up with the database.
    ref_key_file: str = ""
    # degrees: an enrolment photo whose face is turned further (|yaw| from the 5 landmarks) is refused
    # (face_turned). 40, not 30: the test photo Hugo_Chavez_0003, a plain three-quarter view, measures 35.4.
    enrol_max_yaw: float = 40.0
    # seconds a visitor session (POST /v1/sessions) lives after its last use; then its people are erased
    session_ttl_s: float = 3600.0
    # a demo: SQLite in a fresh temporary directory, erased when the server stops (the UI says so)
    ephemeral: bool = False

    def __post_init__(self) -> None:
        if self.ephemeral and (self.database_url or self.data_dir):
            raise ConfigError("ephemeral keeps everything in a temporary directory: unset database_url and data_dir")
        if not 0.0 < self.enrol_max_yaw <= 90.0:
            raise ConfigError(f"enrol_max_yaw {self.enrol_max_yaw} is outside (0, 90] degrees")
        if not 0.0 < self.session_ttl_s <= 30 * 86400:
            raise ConfigError(f"session_ttl_s {self.session_ttl_s} is outside (0, 30 days]")


@dataclass(frozen=True)
class LimitSettings:
    """What one request, image or archive may cost."""

    max_request_bytes: int = 30 * 1024 * 1024
    max_image_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    max_faces: int = 50  # per image: the largest faces are kept
    max_zip_bytes: int = 200 * 1024 * 1024
    max_zip_entries: int = 2_000
    max_zip_uncompressed_bytes: int = 1024 * 1024 * 1024
    max_zip_ratio: float = 100.0  # uncompressed / compressed, per entry
    # a JPEG's scans: each is one more pass over every coefficient (libjpeg's progressive script writes 10)
    max_jpeg_scans: int = 100

    def __post_init__(self) -> None:
        for f in fields(self):
            _at_least(f.name, getattr(self, f.name), 1)


@dataclass(frozen=True)
class ServerSettings:
    """The HTTP server. ``auth``: ``auto`` requires API keys whenever bound beyond loopback."""

    host: str = "127.0.0.1"
    port: int = 8000
    auth: str = "auto"
    cors_origins: tuple[str, ...] = ()  # CORS is off unless origins are named
    # Host names served (DNS rebinding): on loopback only localhost, 127.0.0.1 and [::1]; beyond
    # loopback these names (``*`` for any), or any name, with a warning, when none are named.
    allowed_hosts: tuple[str, ...] = ()
    log_level: str = "info"
    # Slow or hostile clients (api/server.py). A request line and headers over max_header_bytes
    # are answered 431; a head not complete header_timeout s after the connection (or its first
    # byte, on a kept-alive connection) is answered 408, and so is a body that makes no progress
    # for body_timeout s while the server waits for it. Real clients send a head of a few hundred
    # bytes in one packet; 64 KiB leaves room for big cookies and keys.
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0  # an idle kept-alive connection is closed after this (uvicorn's default)
    max_connections: int = 1000  # open HTTP and WebSocket connections; beyond, new ones get 503

    def __post_init__(self) -> None:
        _one_of("auth", self.auth, AUTH_MODES)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is outside 0-65535")
        _at_least("max_header_bytes", self.max_header_bytes, 1024)
        _at_least("max_connections", self.max_connections, 1)
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout"):
            _at_least(name, getattr(self, name), 0.1)

    @property
    def loopback(self) -> bool:
        """Whether the server is bound to a loopback address (``localhost``, 127.0.0.0/8, ``::1``)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False

    @property
    def auth_required(self) -> bool:
        """Whether every API call needs a key: always when bound beyond loopback, unless turned off."""
        if self.auth == "required":
            return True
        if self.auth == "off":
            return False
        return not self.loopback


@dataclass(frozen=True)
class StreamSettings:
    """The WebSocket stream of frames."""

    max_stream_frame_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class CameraSettings:
    """Cameras run by the server (``facegate serve``) or by ``facegate worker`` processes."""

    run_cameras: bool = True  # this process runs enabled cameras (False: API only, workers run them)
    camera_fps: float = 5.0  # default frames processed per second per camera
    camera_cooldown: float = 5.0  # default seconds before a person seen again becomes an event again
    camera_min_face_px: int = 40  # default smallest face (shorter side, px) a camera recognises
    camera_timeout: float = 5.0  # seconds to open a source, and to wait for a packet while reading
    camera_stall: float = 10.0  # a live camera with no frame for this long is down
    # a worker's claim on a camera, renewed every third of it: a worker killed with kill -9 leaves its
    # cameras to the others within about a lease and a renewal (measured: tests/test_camera_workers.py)
    camera_lease: float = 6.0
    allow_file_cameras: bool = False  # local file paths as camera URLs (tests, demos)
    restream_fps: float = 5.0  # the MJPEG preview with overlays, frames per second at most

    def __post_init__(self) -> None:
        for name in ("camera_fps", "camera_timeout", "camera_stall", "camera_lease", "restream_fps"):
            _at_least(name, getattr(self, name), 0.1)
        _at_least("camera_cooldown", self.camera_cooldown, 0)
        _at_least("camera_min_face_px", self.camera_min_face_px, 0)


@dataclass(frozen=True)
class VideoSettings:
    """Video files analysed as background jobs (``/v1/videos``, ``facegate video``)."""

    run_videos: bool = True  # this process runs queued video jobs
    max_video_bytes: int = 2 * 1024**3  # an upload over this is refused (413 video_too_large)
    max_video_seconds: float = 4 * 3600.0  # a longer video is refused (422 video_too_long)
    video_analysis_fps: float = 10.0  # frames analysed per second of video (all of them below)
    video_retention_days: float = 7.0  # uploads and results are deleted this long after the job ended
    video_lease: float = 30.0  # a job whose process stops renewing this long is taken over (or failed)

    def __post_init__(self) -> None:
        for name in ("max_video_bytes", "max_video_seconds", "video_analysis_fps", "video_lease"):
            _at_least(name, getattr(self, name), 1)
        _at_least("video_retention_days", self.video_retention_days, 0)


@dataclass(frozen=True)
class EventSettings:
    """The event log (recognitions, unknowns, departures, camera state)."""

    event_retention_days: float = 30.0  # older events are deleted (checked hourly)
    snapshot_retention_days: float = 7.0  # the face pictures of events, deleted sooner
    attendance_absence_s: float = 600.0  # attendance: a gap longer than this ends a stay
    # MQTT (pip install "facegate[mqtt]"): mqtt://user:password@host:1883; empty: off
    mqtt_url: str = field(default="", metadata=SECRET)
    mqtt_prefix: str = "facegate"
    mqtt_discovery_prefix: str = "homeassistant"  # Home Assistant's discovery topics
    mqtt_keepalive: int = 30  # seconds; the broker sends the Last Will (offline) after 1.5 of them
    # hosts webhook URLs may name: hooks.example.org, *.example.org, 192.0.2.7, 10.0.0.0/8 (names as
    # written, never resolved); empty: any host
    webhook_allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _at_least("event_retention_days", self.event_retention_days, 0)
        _at_least("snapshot_retention_days", self.snapshot_retention_days, 0)
        _at_least("attendance_absence_s", self.attendance_absence_s, 0)


@dataclass(frozen=True)
class DecisionSettings:
    """When a face gets a name: the share of strangers (never enrolled) that may get one (FPIR).

    ``decision_preset``: ``strict`` (0.1%, doors), ``balanced`` (1%), ``lenient`` (5%, sorting
    photos); ``target_fpir`` overrides the preset. The evidence a name needs follows from it
    and the size of the gallery searched (docs/calibration.md). ``match_threshold`` (engine)
    replaces all of it with one fixed similarity.
    """

    decision_preset: str = "balanced"
    target_fpir: float | None = None

    def __post_init__(self) -> None:
        from facegate.core.presets import PRESETS, target_fpir

        _one_of("decision_preset", self.decision_preset, tuple(PRESETS))
        target_fpir(self.decision_preset, self.target_fpir)  # raises on an FPIR out of range


SECTIONS: dict[str, type] = {
    "engine": EngineSettings,
    "decision": DecisionSettings,
    "store": StoreSettings,
    "limits": LimitSettings,
    "server": ServerSettings,
    "stream": StreamSettings,
    "cameras": CameraSettings,
    "videos": VideoSettings,
    "events": EventSettings,
}


@dataclass(frozen=True)
class Settings:
    """Every setting, by section; ``sources`` says where each value came from (``section.name`` keys)."""

    engine: EngineSettings = field(default_factory=EngineSettings)
    decision: DecisionSettings = field(default_factory=DecisionSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    stream: StreamSettings = field(default_factory=StreamSettings)
    cameras: CameraSettings = field(default_factory=CameraSettings)
    videos: VideoSettings = field(default_factory=VideoSettings)
    events: EventSettings = field(default_factory=EventSettings)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def data_dir(self) -> Path:
        if self.store.data_dir:
            return Path(self.store.data_dir).expanduser()
        from platformdirs import user_data_dir

        return Path(user_data_dir("facegate"))

    @property
    def database_url(self) -> str:
        """The configured database, else SQLite in the data directory (created on demand)."""
        if self.store.database_url:
            return self.store.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'facegate.db'}"

    def with_values(self, **values: Any) -> Settings:
        """These settings with some values replaced by name (test and tool convenience; source ``code``)."""
        return _apply(self, values, "code")

    def items(self) -> list[tuple[str, Any, str]]:
        """``(section.name, value, source)`` of every setting, secrets masked."""
        out = []
        for section in SECTIONS:
            part = getattr(self, section)
            for f in fields(part):
                key = f"{section}.{f.name}"
                value = getattr(part, f.name)
                if f.metadata.get("secret") and value:
                    value = mask_secret(str(value))
                out.append((key, value, self.sources.get(key, "default")))
        return out


def mask_secret(value: str) -> str:
    """A URL with its password replaced by ``***`` (other secrets: all of it)."""
    masked, count = re.subn(r"(://[^:/@]+:)[^@]*@", r"\1***@", value)
    return masked if count or "://" in value else "***"


# ----------------------------------------------------------------- loading


def _owner_of() -> dict[str, str]:
    """Setting name -> its section."""
    owners = {}
    for section, kind in SECTIONS.items():
        for f in fields(kind):
            owners[f.name] = section
    return owners


NAMES = _owner_of()


def load_settings(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults, then the TOML file (``config_file`` or ``$FACEGATE_CONFIG``), then ``$PORT`` (the
    platform's port), then ``FACEGATE_*`` variables, then ``flags`` (by setting name; ``None`` values are ignored)."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    path = config_file or environ.get("FACEGATE_CONFIG") or None
    if path:
        settings = _apply(settings, _read_toml(Path(path)), f"file {path}")
    port = environ.get("PORT", "").strip()  # set by Cloud Run and similar platforms; FACEGATE_PORT wins
    if port:
        if not port.isdigit():
            raise ConfigError(f"PORT={port!r} is not a port number")
        settings = _apply(settings, {"port": int(port)}, "env PORT")
    for name in NAMES:
        raw = environ.get(f"FACEGATE_{name.upper()}")
        if raw is not None:
            settings = _apply(settings, {name: _parse_text(name, raw)}, f"env FACEGATE_{name.upper()}")
    for name, value in (flags or {}).items():
        if value is not None:
            settings = _apply(settings, {name: value}, "flag")
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise ConfigError(f"{path}: unknown section [{section}]; sections are {', '.join(SECTIONS)}")
        for name, value in table.items():
            if NAMES.get(name) != section:
                raise ConfigError(f"{path}: [{section}] has no setting {name!r}")
            values[name] = _check_type(name, value)
    return values


def _apply(settings: Settings, values: Mapping[str, Any], source: str) -> Settings:
    sources = dict(settings.sources)
    by_section: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        section = NAMES.get(name)
        if section is None:
            raise ConfigError(f"no setting named {name!r}")
        by_section.setdefault(section, {})[name] = _check_type(name, value)
        sources[f"{section}.{name}"] = source
    parts = {section: replace(getattr(settings, section), **changes) for section, changes in by_section.items()}
    return replace(settings, **parts, sources=sources)


def _field_type(name: str) -> Any:
    hints = typing.get_type_hints(SECTIONS[NAMES[name]])
    return hints[name]


def _base_types(kind: Any) -> tuple[type, ...]:
    """The runtime types a setting of type ``kind`` accepts (``float | None`` -> float, NoneType)."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return tuple(t for arg in typing.get_args(kind) for t in _base_types(arg))
    origin = typing.get_origin(kind)
    return (origin,) if origin else (kind,)


def _check_type(name: str, value: Any) -> Any:
    allowed = _base_types(_field_type(name))
    if isinstance(value, list) and tuple in allowed:
        value = tuple(value)
    if isinstance(value, int) and not isinstance(value, bool) and float in allowed and int not in allowed:
        value = float(value)
    if isinstance(value, bool) and bool not in allowed:
        raise ConfigError(f"{name} must be {_describe(allowed)}; got {value!r}")
    if not isinstance(value, allowed):
        raise ConfigError(f"{name} must be {_describe(allowed)}; got {value!r}")
    return value


def _describe(allowed: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in allowed)


def _parse_text(name: str, raw: str) -> Any:
    """A ``FACEGATE_*`` variable's text as the setting's type."""
    allowed = _base_types(_field_type(name))
    raw = raw.strip()
    env = f"FACEGATE_{name.upper()}={raw!r}"
    if tuple in allowed:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if bool in allowed:
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ConfigError(f"{env} is not a boolean (1/0, true/false, yes/no, on/off)")
        return raw.lower() in ("1", "true", "yes", "on")
    if not raw and type(None) in allowed:
        return None
    try:
        if int in allowed:
            return int(raw)
        if float in allowed:
            return float(raw)
    except ValueError:
        raise ConfigError(f"{env} is not a valid {_describe(allowed)}") from None
    return raw


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices}; got {value!r}")


def _at_least(name: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"{name} must be at least {low}; got {value}")
