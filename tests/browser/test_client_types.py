"""clients/js/chatvault.d.ts against the OpenAPI document: types generated from the document with
openapi-typescript, and `tsc --noEmit` over clients/js/check/contract.ts, which asserts that every
declared shape is the document's (both ways) and that the client covers every documented route.
A document that drifts from the declarations fails the check: the second test proves it."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "js"
DOCUMENT = ROOT / "layers" / "common" / "chatvault" / "openapi.json"
MODULES = CLIENT / "node_modules"


def _tool(name: str, script: str) -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("The type check needs Node.js (and npm): `apt-get install -y nodejs npm`", pytrace=False)
    path = MODULES / name / script
    if not path.is_file():
        pytest.fail(
            f"{path.relative_to(ROOT)} is missing: `make install` (npm ci in clients/js)", pytrace=False
        )
    return [node, str(path)]


def _check(document: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
    """Generate types from `document` beside a copy of the declarations and the check; run tsc."""
    (tmp / "check").mkdir()
    shutil.copy(CLIENT / "chatvault.d.ts", tmp / "chatvault.d.ts")
    for name in ("contract.ts", "tsconfig.json"):
        shutil.copy(CLIENT / "check" / name, tmp / "check" / name)
    (tmp / "openapi.json").write_text(json.dumps(document))
    generated = subprocess.run(
        [
            *_tool("openapi-typescript", "bin/cli.js"),
            str(tmp / "openapi.json"),
            "-o",
            str(tmp / "check" / "openapi.d.ts"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert generated.returncode == 0, generated.stderr
    return subprocess.run(
        [*_tool("typescript", "bin/tsc"), "-p", str(tmp / "check")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_declarations_are_the_documents_shapes(tmp_path: Path) -> None:
    checked = _check(json.loads(DOCUMENT.read_text()), tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _renamed_field(doc: dict[str, Any]) -> None:
    session = doc["components"]["schemas"]["SessionOut"]
    session["properties"]["name"] = session["properties"].pop("title")
    session["required"] = ["name" if r == "title" else r for r in session["required"]]


def _retyped_field(doc: dict[str, Any]) -> None:
    doc["components"]["schemas"]["UploadOut"]["properties"]["max_bytes"] = {"type": "string"}


def _new_optional_field(doc: dict[str, Any]) -> None:
    doc["components"]["schemas"]["AppendMessageRequest"]["properties"]["reply_to"] = {"type": "string"}


def _new_route(doc: dict[str, Any]) -> None:
    doc["paths"]["/api/v1/sessions/{session_id}/summary"] = {
        "get": copy.deepcopy(doc["paths"]["/api/v1/sessions/{session_id}"]["get"])
    }


def _newer_shape_differs(doc: dict[str, Any]) -> None:
    """A document with the uploads' read side whose Upload is not the client's."""
    doc["components"]["schemas"]["UploadInfoOut"] = {
        "type": "object",
        "properties": {"upload_id": {"type": "string"}, "filename": {"type": "string"}},
        "required": ["upload_id", "filename"],
    }


@pytest.mark.parametrize(
    "drift", [_renamed_field, _retyped_field, _new_optional_field, _new_route, _newer_shape_differs]
)
def test_a_document_that_drifts_from_the_declarations_fails_the_check(tmp_path: Path, drift: Any) -> None:
    document = json.loads(DOCUMENT.read_text())
    drift(document)
    checked = _check(document, tmp_path)
    assert checked.returncode != 0
    assert "contract.ts" in checked.stdout
