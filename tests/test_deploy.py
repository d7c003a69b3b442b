"""The container image and compose file say what docs/deploy.md promises (no engine is needed to check)."""

from __future__ import annotations

import re
from pathlib import Path

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
