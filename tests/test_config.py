"""One configuration: defaults < TOML file < FACEGATE_* variables < flags, with each value's source."""

from __future__ import annotations

import json
import os

import pytest

from facegate.config import load_settings
from facegate.core.errors import FacegateError
from test_cli import facegate

TOML = """
[engine]
flip = true
match_threshold = 0.93
inference_threads = 3

[store]
database_url = "postgresql+psycopg://ada:s3cret@db.example/facegate"

[server]
port = 9000
cors_origins = ["https://a.example"]

[limits]
max_zip_ratio = 50
"""


def test_file_then_variables_then_flags(tmp_path):
    path = tmp_path / "facegate.toml"
    path.write_text(TOML)
    s = load_settings(environ={"FACEGATE_CONFIG": str(path), "FACEGATE_PORT": "9100", "FACEGATE_FLIP": "0"})
    assert s.engine.match_threshold == 0.93 and s.engine.inference_threads == 3  # the file
    assert s.server.port == 9100 and s.engine.flip is False  # variables beat the file
    assert s.limits.max_zip_ratio == 50.0 and s.server.cors_origins == ("https://a.example",)
    assert s.sources["server.port"] == "env FACEGATE_PORT"
    assert s.sources["engine.match_threshold"] == f"file {path}"
    flagged = load_settings(path, environ={"FACEGATE_PORT": "9100"}, flags={"port": 9200, "host": None})
    assert flagged.server.port == 9200 and flagged.sources["server.port"] == "flag"
    assert flagged.server.host == "127.0.0.1" and "server.host" not in flagged.sources  # None: not given
    shown = dict((key, (value, source)) for key, value, source in flagged.items())
    assert shown["store.database_url"][0] == "postgresql+psycopg://ada:***@db.example/facegate"
    assert shown["engine.detector"] == ("blazeface", "default")


@pytest.mark.parametrize(
    ("text", "environ", "names"),
    [
        ("[engine]\nflip = 'yes'\n", {}, "flip"),
        ("[server]\nthreads = 2\n", {}, "threads"),
        ("[camera]\nfps = 2\n", {}, "camera"),
        ("[engine\n", {}, "TOML"),
        ("", {"FACEGATE_MAX_FACES": "many"}, "FACEGATE_MAX_FACES"),
        ("", {"FACEGATE_AUTH": "sometimes"}, "auth"),
        ("", {"FACEGATE_MAX_IMAGE_BYTES": "0"}, "max_image_bytes"),
    ],
)
def test_bad_settings_are_refused_by_name(tmp_path, text, environ, names):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(FacegateError) as err:
        load_settings(path, environ=environ)
    assert err.value.code == "bad_config" and names in err.value.message


def test_config_command_shows_each_source(tmp_path):
    path = tmp_path / "facegate.toml"
    path.write_text(TOML)
    os.environ["FACEGATE_PORT"] = "9100"
    try:
        out = facegate("--config", str(path), "--no-flip", "config").stdout
        as_json = json.loads(facegate("--config", str(path), "config", "--json").stdout)
    finally:
        del os.environ["FACEGATE_PORT"]
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["server.port"].endswith("# env FACEGATE_PORT") and "9100" in lines["server.port"]
    assert lines["engine.flip"].endswith("# flag") and "false" in lines["engine.flip"]
    assert lines["engine.match_threshold"].endswith(f"# file {path}")
    assert lines["engine.detector"].endswith("# default")
    assert "s3cret" not in out and "ada:***@" in lines["store.database_url"]
    assert as_json["engine.flip"] == {"value": True, "source": f"file {path}"}
    assert as_json["store.data_dir"]["source"] == "env FACEGATE_DATA_DIR"  # the tests' own data directory
