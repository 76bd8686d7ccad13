"""`sam build` succeeds for the template as deployed (python3.13, arm64 layer), and every handler
imports with nothing on sys.path but its own code and the built layer, as in Lambda.

The machine running the tests may not be arm64, so the import check uses a second build of the same
template for the host's architecture; the first build proves the arm64 wheels resolve."""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.template import ROOT, Stack, load

pytestmark = pytest.mark.packaging

SAM = Path(os.environ.get("SAM", ROOT / ".tools/sam/bin/sam"))
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[
    platform.machine().lower()
]
FUNCTIONS = sorted(k for k, v in load()["Resources"].items() if v["Type"] == "AWS::Serverless::Function")


def _python313() -> str | None:
    candidates = [
        shutil.which("python3.13"),
        *sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13")),
    ]
    for candidate in candidates:
        if (
            candidate
            and subprocess.run([str(candidate), "-V"], check=False, capture_output=True).returncode == 0
        ):
            return str(candidate)
    return None


PY313 = _python313()


def _build(template: Path, build_dir: Path, arch: str) -> subprocess.Popen[str]:
    path = os.environ.get("SAM_PATH") or (
        f"{Path(PY313).parent}:{os.environ['PATH']}" if PY313 else os.environ["PATH"]
    )
    return subprocess.Popen(
        [
            str(SAM),
            "build",
            "--template-file",
            str(template),
            "--base-dir",
            str(ROOT),
            "--build-dir",
            str(build_dir),
            "--parallel",
            # as samconfig.toml sets it (the host template's copy lies outside the project)
            "--language-extensions",
        ],
        cwd=ROOT,
        env={**os.environ, "PATH": path, "SAM_CLI_TELEMETRY": "0", "LAYER_ARCH": arch},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not SAM.exists() or PY313 is None:
        if os.environ.get("CI"):
            pytest.fail("SAM CLI venv or Python 3.13 missing")
        pytest.skip("needs the SAM CLI venv (make install) and Python 3.13")
    tmp = tmp_path_factory.mktemp("sam")
    host_template = tmp / "template.host.yaml"
    host_template.write_text((ROOT / "template.yaml").read_text().replace("arm64", HOST_ARCH))
    jobs = {
        "arm64": _build(ROOT / "template.yaml", tmp / "arm64", "arm64"),
        "host": _build(host_template, tmp / "host", HOST_ARCH),
    }
    for name, job in jobs.items():
        output, _ = job.communicate(timeout=900)
        assert job.returncode == 0, f"sam build ({name}) failed:\n{output[-4000:]}"
    return {"arm64": tmp / "arm64", "host": tmp / "host"}


def test_sam_build_produces_an_arm64_layer_and_every_function(builds: dict[str, Path]) -> None:
    build = builds["arm64"]
    layer = build / "CommonLayer" / "python"
    assert (layer / "chatvault" / "__init__.py").is_file(), "layer source must be flat (SAM adds python/)"
    assert not (layer / "python").exists()
    native = list(layer.glob("pydantic_core/_pydantic_core*.so"))
    assert native, "pydantic_core missing from the layer"
    assert all("aarch64" in so.name for so in native), native
    for name in FUNCTIONS:
        assert (build / name / "app.py").is_file(), name


def test_the_layer_ships_bytecode_that_needs_no_source_check(builds: dict[str, Path]) -> None:
    """/opt is read-only on Lambda: without bytecode in the layer every cold start compiles the
    libraries again. Unchecked-hash bytecode is used whatever the file times after unzipping."""
    layer = builds["arm64"] / "CommonLayer" / "python"
    sources = list(layer.rglob("*.py"))
    assert len(sources) > 500
    missing = [p for p in sources if not Path(importlib.util.cache_from_source(str(p))).is_file()]
    assert not missing, missing[:5]
    for module in ("botocore/client.py", "pydantic/main.py", "chatvault/core/settings.py"):
        header = Path(importlib.util.cache_from_source(str(layer / module))).read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER, module  # Python 3.13 bytecode
        assert int.from_bytes(header[4:8], "little") == 0b01, module  # hash-based, source not checked


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_imports_with_only_the_built_layer(builds: dict[str, Path], function: str) -> None:
    build = builds["host"]
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import app; "
        "assert callable(app.lambda_handler); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('moto', 'pytest', 'requests', 'yaml')]; "
        "assert not bad, bad; "
        # every module the handler loaded from the layer came with its bytecode
        "import os; compiled = [m for m, mod in list(sys.modules.items()) "
        "if (getattr(mod, '__file__', '') or '').startswith(sys.argv[2]) and mod.__file__.endswith('.py') "
        "and not os.path.isfile(mod.__cached__ or '')]; "
        "assert not compiled, compiled"
    )
    # the environment template.yaml gives the function, and nothing else
    env = {
        **Stack.from_template().functions()[function].environment,
        "AWS_REGION": "us-east-1",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [PY313, "-I", "-S", "-c", code, str(build / function), str(build / "CommonLayer" / "python")],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
