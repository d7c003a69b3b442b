"""Several ``facegate worker`` processes on one PostgreSQL database share the cameras and take over from
a worker killed with ``kill -9``: its cameras are live again on the other within 15 s, and no camera is
ever run by two workers at once: the survivor starts each of them only after the killed worker's lease on
it has ended (and a runner stops deciding when its lease would end, ``service.camera_runner``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from camera_servers import RtspServer, require_rtsp

LEASE_S = 6.0  # the default
CAMERAS = 4


def start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "facegate", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def leases_of(runtime, worker: str) -> dict[str, float]:
    """The cameras a worker holds, with when its lease on each ends (Unix time)."""
    from sqlalchemy import select

    from facegate.store.schema import CameraRow

    with runtime.store.transaction() as session:
        rows = session.execute(
            select(CameraRow.public_id, CameraRow.lease_until).where(CameraRow.lease_owner == worker)
        )
        return dict(rows.all())


def test_a_killed_worker_s_cameras_move_to_the_other_worker(postgres_url, tmp_path):
    require_rtsp()
    from facegate.config import load_settings
    from facegate.service.runtime import Runtime
    from facegate.store.records import CameraFields

    settings = load_settings().with_values(
        database_url=postgres_url, data_dir=str(tmp_path), ref_key_file=str(tmp_path / "ref.key")
    )
    runtime = Runtime.build(settings)
    server = RtspServer()
    server.start()
    env = {
        **os.environ,
        "FACEGATE_DATABASE_URL": postgres_url,
        "FACEGATE_DATA_DIR": str(tmp_path),
        "FACEGATE_REF_KEY_FILE": str(tmp_path / "ref.key"),
        "FACEGATE_CAMERA_LEASE": str(LEASE_S),
        "FACEGATE_INFERENCE_THREADS": "1",
    }
    workers = [start_worker(env), start_worker(env)]
    history: dict[str, list[tuple[str, float]]] = defaultdict(list)  # camera -> (worker, since when), in order

    def sample() -> dict[str, tuple[str, str, float]]:
        views = {v.camera.id: v for v in runtime.cameras.views()}
        for camera_id, view in views.items():
            if view.worker and (not history[camera_id] or history[camera_id][-1][0] != view.worker):
                history[camera_id].append((view.worker, time.monotonic()))
        return {cid: (v.state, v.worker, v.status_age_s) for cid, v in views.items()}

    def wait(predicate, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if predicate(sample()):
                return time.monotonic() - started
            time.sleep(0.2)
        pytest.fail(f"not reached within {timeout} s: {sample()}")

    try:
        for i in range(CAMERAS):
            runtime.cameras.add(CameraFields(name=f"cam {i}", url=server.url()))
        host = socket.gethostname()
        names = {f"{host}:{w.pid}" for w in workers}
        wait(
            lambda s: (
                all(state == "live" for state, _, _ in s.values()) and {worker for _, worker, _ in s.values()} == names
            ),
            90,
        )  # both workers run two cameras each
        victim = workers[0]
        victim_name, survivor_name = f"{host}:{victim.pid}", f"{host}:{workers[1].pid}"
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        victim_leases = leases_of(runtime, victim_name)
        assert len(victim_leases) == CAMERAS // 2
        took = wait(
            lambda s: all(state == "live" and worker == survivor_name and age < 2 for state, worker, age in s.values()),
            15,
        )
        print(f"failover: all {CAMERAS} cameras live on the survivor {took:.1f} s after kill -9")
        for camera_id, order in history.items():
            assert order[-1][0] == survivor_name, (camera_id, order)
        # the survivor started each of the victim's cameras only once the victim's lease on it had ended
        for camera_id, lease_end in victim_leases.items():
            started = runtime.cameras.view(runtime.cameras.get(camera_id)).stats["running_since"]
            assert started >= lease_end, (camera_id, started, lease_end)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        server.close()
        runtime.close()
