"""onnxruntime execution providers (``engine.execution_provider``): a provider the installed onnxruntime
lacks is refused at start, naming the package to install; ``cpu`` changes nothing; ``/v1/info`` and
``facegate config`` say which providers the embedder runs on."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import numpy as np
import onnxruntime
import pytest

from api_server import free_port, running_server
from conftest import photos
from facegate.config import Settings, load_settings
from facegate.core.errors import ConfigError
from facegate.core.providers import PROVIDERS, ProviderUnavailable, session_providers

PACKAGES = {"cuda": "onnxruntime-gpu", "tensorrt": "onnxruntime-gpu", "openvino": "onnxruntime-openvino"}
PACKAGES["rocm"] = "onnxruntime-rocm"
AVAILABLE = set(onnxruntime.get_available_providers())
MISSING = [name for name in PACKAGES if PROVIDERS[name][0][0] not in AVAILABLE]


def _facegate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "facegate", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_each_provider_names_its_package_and_falls_back_to_the_cpu_for_missing_operators():
    assert set(PROVIDERS) == {"cpu", *PACKAGES}
    for name, package in PACKAGES.items():
        wanted, named = PROVIDERS[name]
        assert named == package and wanted[-1] == "CPUExecutionProvider"
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert session_providers("tensorrt", gpu) == gpu
    assert session_providers("cuda", gpu) == gpu[1:]
    assert session_providers("cpu", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(ProviderUnavailable, match="onnxruntime-gpu"):  # TensorRT needs its own provider
        session_providers("tensorrt", gpu[1:])
    with pytest.raises(ConfigError) as err:
        session_providers("gpu", gpu)
    assert err.value.code == "bad_config"


@pytest.mark.parametrize("name", MISSING)
def test_a_missing_provider_is_refused_by_the_settings_naming_the_package(name):
    for attempt in (
        lambda: load_settings(environ={"FACEGATE_EXECUTION_PROVIDER": name}),
        lambda: Settings().with_values(execution_provider=name),
    ):
        with pytest.raises(ProviderUnavailable) as err:
            attempt()
        assert err.value.code == "provider_unavailable" and isinstance(err.value, ConfigError)
        message = err.value.message
        assert f"pip install {PACKAGES[name]}" in message and PROVIDERS[name][0][0] in message, message


@pytest.mark.skipif(not MISSING, reason="every provider is installed")
def test_facegate_serve_and_the_app_factory_refuse_a_missing_provider(tmp_path, monkeypatch):
    name = MISSING[0]
    env = {"FACEGATE_EXECUTION_PROVIDER": name, "FACEGATE_PORT": str(free_port())}
    served = _facegate("serve", env=env)
    assert served.returncode == 2, served.stderr
    assert served.stderr.startswith("error [provider_unavailable]: ") and PACKAGES[name] in served.stderr
    assert "Traceback" not in served.stderr
    from facegate.api.app import create_app

    monkeypatch.setenv("FACEGATE_EXECUTION_PROVIDER", name)
    with pytest.raises(ProviderUnavailable):
        create_app()


@pytest.mark.skipif(not MISSING, reason="every provider is installed")
def test_the_embedder_itself_refuses_a_missing_provider():
    from facegate.vision.embedding import OnnxDlibEmbedder

    with pytest.raises(ProviderUnavailable, match=PACKAGES[MISSING[0]]):
        OnnxDlibEmbedder(execution_provider=MISSING[0])


def test_cpu_gives_the_same_embeddings_as_the_default(engine):
    from facegate.service.runtime import engine_config
    from facegate.vision.embedding import OnnxDlibEmbedder, embed

    chips = np.stack([engine.analyze(p, keep_chips=True)[0].chip for p in photos("Tony_Blair")[:3]])
    default, cpu = OnnxDlibEmbedder(num_threads=1), OnnxDlibEmbedder(num_threads=1, execution_provider="cpu")
    assert default.providers == cpu.providers == ("CPUExecutionProvider",)
    assert np.array_equal(embed(default, chips), embed(cpu, chips))
    assert np.array_equal(embed(default, chips, flip=True), embed(cpu, chips, flip=True))
    chosen = Settings().with_values(execution_provider="cpu")
    assert engine_config(chosen) == engine_config(Settings()) and chosen.sources["engine.execution_provider"] == "code"


def test_info_and_config_show_the_providers_in_use(tmp_path, engine):
    engine.warmup()  # the server shares this process's models
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{tmp_path / 'f.db'}")
    with running_server(settings):
        info = httpx.get(f"http://127.0.0.1:{settings.server.port}/v1/info", timeout=60).json()
    assert info["execution_providers"] == ["CPUExecutionProvider"] and info["embedder"] == "onnx"
    shown = _facegate("config", env={"FACEGATE_EXECUTION_PROVIDER": "cpu"})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(
        line.startswith("engine.execution_provider") and line.endswith("# env FACEGATE_EXECUTION_PROVIDER")
        for line in lines
    )
    assert lines[-1] == "# the embedder runs on: CPUExecutionProvider"


@pytest.mark.skipif("CUDAExecutionProvider" in AVAILABLE, reason="a GPU build of onnxruntime is installed")
def test_a_gpu_provider_that_cannot_start_leaves_the_embedder_on_the_cpu_and_says_so(monkeypatch, caplog):
    """onnxruntime-gpu lists CUDA even where no GPU or CUDA library is found; its session then runs on the CPU.
    Simulated: the CPU build made to list CUDA as available."""
    from facegate.vision.embedding import OnnxDlibEmbedder

    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert Settings().with_values(execution_provider="cuda").engine.execution_provider == "cuda"
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):  # onnxruntime's own
        embedder = OnnxDlibEmbedder(num_threads=1, execution_provider="cuda")
    assert embedder.providers == ("CPUExecutionProvider",)
    assert "could not start CUDAExecutionProvider" in caplog.text and "runs on CPUExecutionProvider" in caplog.text
