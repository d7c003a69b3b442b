"""The README is true: its command blocks run as written on a fresh data directory, and its
example answer has the keys the API really returns."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api_server import files, free_port, running_server
from conftest import GROUP, photos
from facegate.api.schemas import RecognizeOut
from facegate.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def bash_blocks() -> list[list[str]]:
    """The command lines of every ```bash block (comments and blank lines dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    out = []
    for block in blocks:
        lines = [re.sub(r"(^|\s)#.*$", "", line).strip() for line in block.splitlines()]
        out.append([line for line in lines if line])
    return out


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_") or k == "FACEGATE_CACHE_DIR"}
    env["FACEGATE_DATA_DIR"] = str(data_dir)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this venv's facegate
    return env


def _photos_as_the_readme_names_them(cwd: Path) -> None:
    """photos/ (a folder per person), ada1.jpg, ada2.jpg, group.jpg, a.jpg, b.jpg and staff/."""
    for folder, person in (("photos/Ada", "Colin_Powell"), ("photos/Bob", "Tony_Blair"), ("staff/Hugo", "Hugo_Chavez")):
        (cwd / folder).mkdir(parents=True)
        for p in photos(person)[:3]:
            shutil.copy(p, cwd / folder / p.name)
    for name, source in (
        ("ada1.jpg", photos("George_W_Bush")[0]),
        ("ada2.jpg", photos("George_W_Bush")[1]),
        ("group.jpg", GROUP),
        ("a.jpg", photos("Tony_Blair")[0]),
        ("b.jpg", photos("Tony_Blair")[1]),
    ):
        shutil.copy(source, cwd / name)


def test_setup_block_is_what_ci_runs_and_serve_needs_no_configuration(tmp_path):
    setup = next(b for b in bash_blocks() if any(line.startswith("pip install") for line in b))
    ci = (ROOT / ".ci" / "run").read_text()
    assert [line for line in setup if line.startswith("pip install")] == [
        'pip install -e ".[test]" && pip install --no-deps -r requirements-nodeps.txt'
    ]
    for line in setup:
        if line.startswith(("pip install", "python -m pytest")):
            assert line in ci  # CI runs the README's install and test commands as written
    assert "facegate serve" in setup
    env = _environment(tmp_path / "data")
    env["FACEGATE_PORT"] = str(free_port())  # as written, on a port of its own
    server = subprocess.Popen(["bash", "-c", "exec facegate serve"], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{env['FACEGATE_PORT']}/readyz", timeout=5).status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200
        assert (tmp_path / "data" / "facegate.db").exists()  # SQLite in the data directory
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def test_every_command_of_the_usage_block_runs_on_a_fresh_data_directory(tmp_path):
    usage = next(b for b in bash_blocks() if b and b[0].startswith("facegate import"))
    _photos_as_the_readme_names_them(tmp_path)
    env = _environment(tmp_path / "data")
    for line in usage:
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        if line.startswith("facegate identify group.jpg --json"):
            faces = json.loads(done.stdout)["faces"]
            assert len(faces) == 6 and all(len(f["candidates"]) == 3 for f in faces)
        if line.startswith("facegate people"):
            assert "Ada Lovelace" in done.stdout
    assert (tmp_path / "boxes.jpg").stat().st_size > 0 and (tmp_path / "office.zip").stat().st_size > 0


def _keys(value) -> object:
    """The shape of a JSON value: its keys, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value and isinstance(value[0], dict | list) else []
    return None


def test_example_answer_has_the_keys_the_api_returns(tmp_path, engine):
    marker = README.index("POST /v1/recognize?top_k=1")
    example = json.loads(re.search(r"```json\n(.*?)```", README[marker:], re.S).group(1))
    assert set(example) == set(RecognizeOut.model_fields)
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{tmp_path / 'f.db'}")
    with running_server(settings), httpx.Client(base_url=f"http://127.0.0.1:{settings.server.port}", timeout=60) as c:
        person = c.post("/v1/people", json={"name": "Tony Blair"}).json()["id"]
        c.post(f"/v1/people/{person}/faces", files=files(*photos("Tony_Blair")[:3]))
        real = c.post("/v1/recognize?top_k=1", files=files(photos("Tony_Blair")[3], field="image")).json()
    assert real["faces"][0]["decision"]["status"] == "match"
    assert _keys(example) == _keys(real)


@pytest.mark.parametrize("command", ["collections", "config", "import", "identify", "verify", "reembed"])
def test_readme_commands_exist(command):
    done = subprocess.run(
        [sys.executable, "-m", "facegate.cli", command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
