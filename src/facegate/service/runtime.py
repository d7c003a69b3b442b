"""The composition root: one :class:`Runtime` per process, built from one :class:`~facegate.config.Settings`.

It creates the store (migrated), the engines, the decision policy, the live indexes and
the scheduler, and the use cases on top of them. The CLI builds one per command and
calls the use cases directly; the server builds one at start, ``await start()`` runs the
scheduler and loads the models, ``await stop()`` ends both.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.engine import make_url

from facegate.config import Settings
from facegate.events.bus import EventBus
from facegate.events.mqtt import MqttConfig, MqttSink
from facegate.gallery.decision import DecisionPolicy
from facegate.service.archives import Archives
from facegate.service.attendance import Attendance
from facegate.service.camera_manager import CameraManager, worker_name
from facegate.service.cameras import Cameras
from facegate.service.enrolment import Enrolment
from facegate.service.eventlog import EventLogSink, Events
from facegate.service.indexes import IndexRegistry
from facegate.service.keys import ApiKeys
from facegate.service.people import People
from facegate.service.pipeline import FrameProcessor
from facegate.service.recognition import Recognition
from facegate.service.scheduler import FairScheduler
from facegate.service.sessions import Sessions
from facegate.service.video_jobs import VideoJobRunner, VideoJobs
from facegate.service.webhooks import Webhooks, WebhookSender
from facegate.store.cameras import CameraStore
from facegate.store.db import current_revision, make_engine, upgrade
from facegate.store.events import EventLog
from facegate.store.keys import KeyStore
from facegate.store.refkeys import RefKeys
from facegate.store.repository import Store
from facegate.store.sessions import SessionStore
from facegate.store.videos import VideoJobStore
from facegate.store.webhooks import WebhookStore
from facegate.vision.engine import EngineConfig, FaceEngine
from facegate.vision.image import ImageLimits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceInfo:
    """What ``/v1/info`` reports."""

    detector: str
    embedder: str
    model_id: str
    flip: bool
    threshold: float  # pairwise (verification); identification's bar depends on the collection
    database: str
    decision: str  # "open_set" or "fixed_threshold"
    target_fpir: float | None  # the share of strangers that may be named (open set)
    # the embedder's onnxruntime providers in use, e.g. ("CPUExecutionProvider",); () before the models load
    execution_providers: tuple[str, ...] = ()


class Runtime:
    """Everything one facegate process runs with, wired once."""

    def __init__(self, settings: Settings, store: Store, engine: FaceEngine) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        # enrolment searches large photos tile by tile, so small faces in big photos are found, and
        # makes flip-averaged templates (more accurate against plain live frames, at no cost per frame)
        self.enrol_engine = FaceEngine(replace(engine.config, thorough=True, flip_templates=True))
        self.policy = DecisionPolicy.for_model(
            engine.model_id,
            settings.engine.match_threshold,
            preset=settings.decision.decision_preset,
            fpir=settings.decision.target_fpir,
        )
        self.indexes = IndexRegistry(store, engine.model_id)
        self.processor = FrameProcessor(engine, self.indexes, self.policy, settings.limits.max_faces)
        self.recognition = Recognition(self.processor, store, self.indexes)
        self.enrolment = Enrolment(
            store,
            self.indexes,
            self.enrol_engine,
            settings.store.store_chips,
            self.policy,
            settings.store.enrol_max_yaw,
        )
        self.people = People(store, self.indexes)
        self.sessions = Sessions(SessionStore(store), self.indexes, settings.store.session_ttl_s)
        self.archives = Archives(store, self.indexes)
        self.keys = ApiKeys(KeyStore(store))
        self.scheduler = FairScheduler(settings.engine.inference_threads)
        self.cameras = Cameras(CameraStore(store), settings.cameras)
        self.bus = EventBus()
        self.camera_manager: CameraManager | None = None  # started by start(cameras=True)
        self.videos = VideoJobs(VideoJobStore(store), settings)
        self.events = Events(EventLog(store))
        self.attendance = Attendance(self.events.log, store, settings.events.attendance_absence_s)
        self.webhooks = Webhooks(WebhookStore(store), settings.events.webhook_allowed_hosts)
        self.webhook_sender: WebhookSender | None = None  # started by start()
        self.mqtt: MqttSink | None = None  # started by start() when events.mqtt_url is set
        self.event_log: EventLogSink | None = None  # started by start()
        self.video_runner: VideoJobRunner | None = None  # started by start(videos=True)
        self.ready = False

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Open (and migrate) the database and set up the engines; no model is loaded yet.

        ``store.ephemeral``: the database lives in a new temporary directory, erased by :meth:`close`.
        """
        scratch = None
        if settings.store.ephemeral:
            scratch = Path(tempfile.mkdtemp(prefix="facegate-ephemeral-"))
            settings = replace(settings, store=replace(settings.store, ephemeral=False, data_dir=str(scratch)))
            log.warning("ephemeral: everything enrolled is kept in %s and erased when the server stops", scratch)
        store = Store(make_engine(settings.database_url), RefKeys.open(ref_key_path(settings)))
        upgrade(store.engine)
        _warn_about_foreign_ref_keys(store)
        runtime = cls(settings, store, FaceEngine(engine_config(settings)))
        runtime.scratch = scratch
        return runtime

    @property
    def model_id(self) -> str:
        return self.engine.model_id

    def warmup(self) -> None:
        """Load every model (readiness turns true after this)."""
        started = time.perf_counter()
        self.engine.warmup()
        self.ready = True
        log.info("models loaded in %.1f s", time.perf_counter() - started)

    def check_database(self) -> None:
        """Raises if the database does not answer."""
        self.store.version()

    def database(self) -> tuple[str | None, str]:
        """The schema revision the database is at, and its URL (password hidden)."""
        return current_revision(self.store.engine), self.store.engine.url.render_as_string(hide_password=True)

    def info(self) -> ServiceInfo:
        config = self.engine.config
        return ServiceInfo(
            config.detector,
            config.embedder,
            self.model_id,
            config.flip,
            self.policy.threshold,
            self.store.engine.dialect.name,
            "open_set" if self.policy.open_set else "fixed_threshold",
            self.policy.fpir if self.policy.open_set else None,
            self.engine.execution_providers() if self.ready else (),
        )

    def _discovery(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Cameras and enrolled people (every collection) for Home Assistant discovery."""
        cameras = [(c.id, c.name) for c in self.cameras.list()]
        people = [(p.id, p.name) for name in self.store.collections() for p, _ in self.store.people(name)]
        return cameras, people

    def reembed(self, collection: str, progress=None) -> int:
        """Recompute templates of other models with this process's engine (see ``Archives.reembed``)."""
        return self.archives.reembed(self.enrol_engine, collection, progress)

    async def start(
        self, warm: bool = True, cameras: bool | None = None, videos: bool | None = None
    ) -> asyncio.Task | None:
        """Run the scheduler; with ``warm``, load the models in its turn (returns that task); with
        ``cameras`` (default: the ``cameras.run_cameras`` setting), run this process's share of the cameras;
        with ``videos`` (default: ``videos.run_videos``), run queued video jobs."""
        await self.scheduler.start()
        retention = self.settings.events
        self.event_log = EventLogSink(
            self.bus, self.events.log, retention.event_retention_days, retention.snapshot_retention_days
        )
        self.event_log.start()
        self.sessions.start()
        self.webhook_sender = WebhookSender(self.webhooks.store, worker_name(), policy=self.webhooks.policy)
        self.webhook_sender.start()
        self.event_log.listeners.append(self.webhook_sender.wake)
        self.webhooks.changed.append(self.webhook_sender.wake)
        if self.settings.events.mqtt_url:
            self.mqtt = MqttSink(self.bus, mqtt_config(self.settings), self._discovery)
            self.mqtt.start()
        if videos if videos is not None else self.settings.videos.run_videos:
            self.video_runner = VideoJobRunner(self.videos, self.processor, self.scheduler, worker_name())
            await self.video_runner.start()
        if cameras if cameras is not None else self.settings.cameras.run_cameras:
            self.camera_manager = CameraManager(
                CameraStore(self.store),
                self.processor,
                self.scheduler,
                self.settings.cameras,
                self.engine.config.limits,
                self.bus,
            )
            await self.camera_manager.start()
        if not warm:
            self.ready = True
            return None
        return asyncio.create_task(self.scheduler.run(self.warmup))

    async def stop(self) -> None:
        if self.video_runner is not None:
            await self.video_runner.stop()
        if self.camera_manager is not None:
            await self.camera_manager.stop()
        await asyncio.to_thread(self.sessions.stop)
        if self.event_log is not None:
            await asyncio.to_thread(self.event_log.stop)
        if self.webhook_sender is not None:
            await asyncio.to_thread(self.webhook_sender.stop)
        if self.mqtt is not None:
            await asyncio.to_thread(self.mqtt.stop)
        await self.scheduler.stop()
        self.close()

    scratch: Path | None = None  # an ephemeral runtime's temporary data directory

    def close(self) -> None:
        self.store.engine.dispose()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def ref_key_path(settings: Settings) -> Path:
    """Where the install's reference key ring lives (``store.refkeys``): beside an SQLite file
    (``facegate.db.refkey``, so the two are backed up and moved together), else in the data directory
    (``facegate.refkey``; PostgreSQL: every server on one database needs a copy of the same file).

    The setting ``store.ref_key_file`` (``FACEGATE_REF_KEY_FILE``) overrides this.
    """
    if settings.store.ref_key_file:
        return Path(settings.store.ref_key_file).expanduser()
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database).expanduser()
        return database.with_name(f"{database.name}.refkey")
    return settings.data_dir / "facegate.refkey"


def _warn_about_foreign_ref_keys(store: Store) -> None:
    """Log when people's references were hashed with keys this process lacks (a second server on a shared
    PostgreSQL database without a copy of the key file): those references cannot be looked up here."""
    missing = store.reference_key_ids() - set(store.ref_keys.keys)
    if missing:
        log.warning(
            "%d external-reference key(s) used in this database are not in %s: people's references hashed with "
            "them cannot be found by this process; copy the key file of the server that wrote them",
            len(missing),
            store.ref_keys.path,
        )


def mqtt_config(settings: Settings) -> MqttConfig:
    e = settings.events
    return MqttConfig(e.mqtt_url, e.mqtt_prefix, e.mqtt_discovery_prefix, e.mqtt_keepalive, f"facegate-{worker_name()}")


def execution_providers(settings: Settings) -> tuple[str, ...]:
    """The onnxruntime providers the embedder runs on with these settings (loads it); () for dlib's own."""
    return FaceEngine(engine_config(settings)).execution_providers() if settings.engine.embedder == "onnx" else ()


def engine_config(settings: Settings) -> EngineConfig:
    """The engine the settings describe (its model id follows from embedder and flip)."""
    engine, limits = settings.engine, settings.limits
    return EngineConfig(
        detector=engine.detector,
        embedder=engine.embedder,
        flip=engine.flip,
        num_threads=engine.model_threads,
        execution_provider=engine.execution_provider,
        limits=ImageLimits(
            max_bytes=limits.max_image_bytes,
            max_pixels=limits.max_image_pixels,
            max_jpeg_scans=limits.max_jpeg_scans,
        ),
    )
