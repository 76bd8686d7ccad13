"""`make dev` refuses to start, in one line and with a non-zero exit, where it could only fail later:
an interpreter older than the functions' Python, or a port something else already holds."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.local_stack import LocalStack, free_port

ROOT = Path(__file__).resolve().parents[2]


def _dev(python: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "infra.local.dev"],
        cwd=ROOT,
        env={**os.environ, "CHATVAULT_DEV_STATE": str(tmp_path / "state.json"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _older_python() -> str | None:
    found = [shutil.which(f"python3.{minor}") for minor in (12, 11, 10)]
    found += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-2].*/bin/python3")))
    for python in filter(None, found):
        probe = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info[:2] < (3, 13))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return python
    return None


def test_an_older_python_is_refused_at_start_with_what_to_install(tmp_path: Path) -> None:
    python = _older_python()
    if python is None:
        pytest.skip("no Python older than 3.13 on this machine")
    done = _dev(python, tmp_path, PORT=str(free_port()), MOTO_PORT=str(free_port()))
    assert done.returncode != 0
    (line,) = done.stderr.strip().splitlines()
    assert "Python 3.13" in line
    assert "Traceback" not in done.stderr + done.stdout


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.mark.parametrize("name", ["PORT", "MOTO_PORT"])
def test_a_port_in_use_is_one_clear_line_and_a_non_zero_exit(
    name: str, held_port: int, tmp_path: Path
) -> None:
    ports = {"PORT": str(free_port()), "MOTO_PORT": str(free_port())} | {name: str(held_port)}
    done = _dev(sys.executable, tmp_path, **ports)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert f"port {held_port} ({name}) is in use" in line
    assert not (tmp_path / "state.json").exists()


def test_the_banner_gives_the_pages_address_and_says_the_data_is_not_kept(stack: LocalStack) -> None:
    """Beside the API's address: the demo page's, which answers, and one line saying that stopping
    `make dev` forgets everything (the emulator keeps its data in memory)."""
    banner = [line for line in stack.log.read_text().splitlines() if line.startswith("[dev] ")]
    assert any(line.endswith(f"API at {stack.api}/api/v1") for line in banner)
    assert f"[dev] The demo page: {stack.api}/" in banner
    page = requests.get(f"{stack.api}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    (memory,) = [line for line in banner if "memory" in line]
    assert "stopping make dev forgets every session and file" in memory
