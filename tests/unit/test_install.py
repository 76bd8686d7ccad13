"""`make dev` installs only what serving needs (requirements.txt); the test toolchain comes with
`make test` (requirements-test.txt)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVING = {
    "boto3",
    "botocore",
    "moto",
    "yaml",
    "aws_lambda_powertools",
    "pydantic",
    "pynamodb",
    "chatvault",
    "infra",
}
TEST_TOOLS = ("pytest", "requests", "ruff", "mypy", "cfn-lint", "schemathesis")


def _requirements(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_serving_requirements_hold_no_test_tools() -> None:
    serving = _requirements("requirements.txt")
    assert "-r layers/common/requirements.txt" in serving
    assert not [r for r in serving if r.split("==")[0].split("[")[0] in TEST_TOOLS]
    test = _requirements("requirements-test.txt")
    assert test[0] == "-r requirements.txt"
    assert {r.split("==")[0] for r in test[1:]} >= set(TEST_TOOLS)


def test_what_make_dev_runs_imports_only_what_serving_installs() -> None:
    imported: set[str] = set()
    for path in [*(ROOT / "infra").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "__future__"}
    assert third_party <= SERVING, third_party - SERVING
