"""The container image and compose file say what docs/deploy.md promises (no engine is needed to check)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_the_containerfile_is_multi_stage_non_root_with_a_volume_a_port_and_a_health_check():
    text = (ROOT / "Containerfile").read_text()
    assert re.search(r"^ARG BASE=", text, re.M) and len(re.findall(r"^FROM \$\{BASE\}", text, re.M)) == 2
    assert re.search(r"^USER 10001", text, re.M) and re.search(r"^VOLUME /data", text, re.M)
    assert re.search(r"^EXPOSE 8000", text, re.M) and "/readyz" in text.split("HEALTHCHECK", 1)[1]
    assert "requirements-nodeps.txt" in text and "warmup()" in text  # models inside, nothing downloaded at start
    ignored = (ROOT / ".containerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_compose_has_the_api_two_workers_postgres_and_mosquitto_with_health_checks():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"facegate", "worker", "postgres", "mosquitto"}
    for name, service in services.items():
        assert "healthcheck" in service, name
    assert services["worker"]["command"] == ["facegate", "worker"] and services["worker"]["deploy"]["replicas"] == 2
    for name in ("facegate", "worker"):
        service = services[name]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["mosquitto"]["condition"] == "service_healthy"
        assert service["environment"]["FACEGATE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "facegate-data:/data" in service["volumes"] and service["env_file"] == "facegate.env"
    assert services["facegate"]["environment"]["FACEGATE_RUN_CAMERAS"] == "false"
    assert services["facegate"]["ports"] == ["127.0.0.1:8000:8000"]
    assert set(compose["volumes"]) == {"facegate-data", "postgres-data", "mosquitto-data"}
    assert (ROOT / "deploy" / "mosquitto.conf").exists() and (ROOT / "deploy" / "facegate.env.example").exists()


def test_every_facegate_setting_in_compose_exists():
    from facegate.config import Settings

    known = {f"FACEGATE_{key.split('.')[1].upper()}" for key, _, _ in Settings().items()}
    text = (ROOT / "compose.yaml").read_text() + (ROOT / "deploy" / "facegate.env.example").read_text()
    used = set(re.findall(r"FACEGATE_[A-Z_]+", text))
    assert used <= known, used - known


# ----------------------------------------------------------------- docs/deploy.md says only what exists

DEPLOY = (ROOT / "docs" / "deploy.md").read_text()
# snake_case words in backticks that are not settings: error codes, API fields, Caddy's and Spaces' own words
NOT_SETTINGS = {
    "model_mismatch",  # an error code
    "provider_unavailable",  # an error code
    "external_ref",  # a person's field
    "execution_providers",  # a field of /v1/info
    "app_port",  # Hugging Face Spaces' README front matter
    "max_size",  # Caddy
    "flush_interval",  # Caddy
    "depends_on",  # compose
}


def _code(text: str) -> list[str]:
    """The text of every code block (comments dropped) and inline code span."""
    blocks = [re.sub(r"(^|\s)#.*$", "", block, flags=re.M) for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S)]
    rest = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    return blocks + re.findall(r"`([^`]+)`", rest)


def test_every_facegate_command_in_the_deploy_guide_exists():
    import typer

    from facegate.cli import app

    root = typer.main.get_command(app)
    used = set()
    for code in _code(DEPLOY):
        for first, second in re.findall(
            r"(?:^|\s)facegate[ \t]+([a-z][a-z-]*)(?=\s|$)(?:[ \t]+([a-z][a-z-]*)(?=\s|$))?", code, re.M
        ):
            assert first in root.commands, f"facegate {first}"
            command = root.commands[first]
            if hasattr(command, "commands"):  # a group: db, keys, cameras...
                assert second in command.commands, f"facegate {first} {second}"
            used.add(first)
    assert {"serve", "config", "worker", "reembed", "export", "import-archive", "db"} <= used


def test_every_setting_the_deploy_guide_names_exists():
    from facegate.config import NAMES
    from facegate.core.providers import PROVIDERS

    named = {word for code in _code(DEPLOY) for word in re.findall(r"^([a-z]+(?:_[a-z]+)+)$", code.strip())}
    assert named - NOT_SETTINGS <= set(NAMES), (named - NOT_SETTINGS) - set(NAMES)
    assert {"execution_provider", "ref_key_file", "max_video_bytes", "store_chips"} <= named
    variables = set(re.findall(r"FACEGATE_[A-Z_]+", DEPLOY)) - {"FACEGATE_CONFIG", "FACEGATE_CACHE_DIR"}
    assert variables <= {f"FACEGATE_{name.upper()}" for name in NAMES}, variables
    production = DEPLOY.split("The ones to look at:", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"`([a-z_]+)`", production)) <= set(NAMES)
    # the GPU table: one row per provider but cpu, with the package core/providers.py names in the error
    rows = dict(re.findall(r"^\| `([a-z]+)` \| `([a-z-]+)`", DEPLOY, re.M))
    assert rows == {name: package for name, (_, package) in PROVIDERS.items() if name != "cpu"}


def test_the_gpu_extra_is_onnxruntime_gpu():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert [re.split(r"[<>=\[]", req)[0] for req in extras["gpu"]] == ["onnxruntime-gpu"]


# ----------------------------------------------------------------- $PORT (Cloud Run)


def test_port_comes_from_the_flag_then_facegate_port_then_port_then_the_file(tmp_path):
    from facegate.config import load_settings
    from facegate.core.errors import ConfigError

    path = tmp_path / "f.toml"
    path.write_text("[server]\nport = 9001\n")
    assert load_settings(path, environ={}).server.port == 9001
    platform = load_settings(path, environ={"PORT": "8080"})
    assert platform.server.port == 8080 and platform.sources["server.port"] == "env PORT"
    assert load_settings(path, environ={"PORT": "8080", "FACEGATE_PORT": "9002"}).server.port == 9002
    assert load_settings(path, environ={"PORT": "8080"}, flags={"port": 9003}).server.port == 9003
    assert load_settings(environ={"PORT": " "}).server.port == 8000  # empty: not set
    with pytest.raises(ConfigError, match="PORT='http'"):
        load_settings(environ={"PORT": "http"})


def test_facegate_serve_listens_on_port(tmp_path):
    from api_server import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FACEGATE_PORT"}
    env |= {"PORT": str(port), "FACEGATE_DATA_DIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "facegate", "serve"], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline, status = time.monotonic() + 60, None
        while status != 200 and time.monotonic() < deadline and server.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
            except httpx.TransportError:
                time.sleep(0.2)
        assert status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
