"""The OpenAPI document is generated from the code and describes what the service really answers."""

from __future__ import annotations

import json

import pytest

from chatvault.http.api_document import api_document
from chatvault.http.errors import ERROR_MAP
from infra.openapi import DOCUMENT, generate, render
from infra.template import Stack


@pytest.fixture(scope="module")
def document() -> dict:
    return generate()


def test_the_committed_document_is_the_generated_one(document: dict) -> None:
    assert DOCUMENT.read_text() == render(document), "run `make openapi` and commit the result"


def test_every_route_is_documented_with_its_error_bodies(document: dict) -> None:
    documented = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    in_template = {(r.method, r.path) for r in Stack.from_template().routes() if "{proxy+}" not in r.path}
    assert documented == in_template
    for method, path in sorted(documented):
        operation = document["paths"][path][method.lower()]
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                # a service writer's 403 may be API Gateway's own body (a bad signature)
                gateway = status == "403" and path.startswith("/api/v1/service/")
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": f"#/components/schemas/{'ForbiddenOut' if gateway else 'ErrorOut'}"
                }
        if path != "/api/v1/openapi.json":
            assert {"413", "503"} <= set(operation["responses"]), (method, path)


def test_documented_error_statuses_are_ones_the_service_produces(document: dict) -> None:
    produced = {status for status, _ in ERROR_MAP.values()}
    for item in document["paths"].values():
        for operation in item.values():
            for status in operation["responses"]:
                assert int(status) < 300 or int(status) in produced


def test_the_error_body_is_the_one_the_handlers_send(document: dict) -> None:
    schemas = document["components"]["schemas"]
    assert set(schemas["ErrorOut"]["properties"]) == {"error"}
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message", "request_id"}
    assert "HTTPValidationError" not in schemas  # Powertools' default 422 body is not what we send


def test_request_models_refuse_unknown_fields(document: dict) -> None:
    for name in (
        "CreateSessionRequest",
        "UpdateSessionRequest",
        "AppendMessageRequest",
        "CreateUploadRequest",
    ):
        assert document["components"]["schemas"][name]["additionalProperties"] is False


def _token_parameters(operation: dict) -> list[dict]:
    return [p for p in operation.get("parameters", []) if p["name"] == "X-Session-Token"]


def test_the_anonymous_document_asks_for_the_token_as_a_header_not_a_security_scheme() -> None:
    """A security scheme promises 401/403 for a bad credential; a wrong token is 404 by contract."""
    served = json.loads(api_document("anonymous"))
    assert set(served["components"]["securitySchemes"]) == {"SigV4"}  # the service writer's only
    for path, item in served["paths"].items():
        for operation in item.values():
            service = path.startswith("/api/v1/service/")
            assert operation.get("security") == ([{"SigV4": []}] if service else None)
            tokens = _token_parameters(operation)
            if path.startswith("/api/v1/sessions/{session_id}"):
                assert tokens == [
                    {
                        **tokens[0],
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    }
                ]
            else:
                assert tokens == []


def test_the_jwt_document_asks_for_a_bearer_token_on_every_session_route() -> None:
    served = json.loads(api_document("jwt"))
    assert set(served["components"]["securitySchemes"]) == {"BearerJWT", "SigV4"}
    assert "X-Session-Token" not in json.dumps(served["paths"])
    for path, item in served["paths"].items():
        for operation in item.values():
            if path.startswith("/api/v1/service/"):
                assert operation["security"] == [{"SigV4": []}]
            elif path in ("/api/v1/openapi.json", "/api/v1/shared/{share_id}"):  # public: no credentials
                assert "security" not in operation
            else:
                assert operation["security"] == [{"BearerJWT": []}]


def test_the_both_document_makes_the_bearer_token_optional_but_for_the_claim() -> None:
    served = json.loads(api_document("both"))
    assert set(served["components"]["securitySchemes"]) == {"BearerJWT", "SigV4"}
    claim = served["paths"]["/api/v1/sessions/{session_id}/claim"]["post"]
    assert claim["security"] == [{"BearerJWT": []}]
    assert _token_parameters(claim)
    get = served["paths"]["/api/v1/sessions/{session_id}"]["get"]
    assert get["security"] == [{}, {"BearerJWT": []}]
    assert _token_parameters(get)[0]["required"] is False
    service = served["paths"]["/api/v1/service/sessions/{session_id}/messages"]["post"]
    assert service["security"] == [{"SigV4": []}]
    assert _token_parameters(service) == []


@pytest.mark.parametrize("mode", ["anonymous", "jwt"])
def test_a_created_session_links_to_every_route_of_it(mode: str) -> None:
    served = json.loads(api_document(mode))
    links = served["paths"]["/api/v1/sessions"]["post"]["responses"]["201"]["links"]
    session_operations = {
        operation["operationId"]
        for path, item in served["paths"].items()
        if path.startswith("/api/v1/sessions/{session_id}")
        for operation in item.values()
    }
    assert set(links) == session_operations
    expected = {"path.session_id": "$response.body#/session_id"}
    if mode == "anonymous":
        expected["header.X-Session-Token"] = "$response.body#/session_token"
    assert all(link["parameters"] == expected for link in links.values())


def test_the_served_document_states_this_deployments_upload_limits(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("MAX_UPLOAD_BYTES", "2048")
    settings_env.setenv("ALLOWED_UPLOAD_TYPES", "image/png,text/csv")
    api_document.cache_clear()
    try:
        upload = json.loads(api_document("anonymous"))["components"]["schemas"]["CreateUploadRequest"]
    finally:
        api_document.cache_clear()
    assert upload["properties"]["size"]["maximum"] == 2048
    assert upload["properties"]["content_type"]["enum"] == ["image/png", "text/csv"]


def test_the_generator_needs_no_environment() -> None:
    """Table names are read when PynamoDB first asks for them, not when a handler is imported."""
    import os
    import subprocess
    import sys

    from infra.openapi import ROOT

    env = {k: v for k, v in os.environ.items() if k not in ("TABLE_NAME", "AUDIT_TABLE", "LIMITS_TABLE")}
    env["PYTHONPATH"] = f"{ROOT / 'layers/common'}:{ROOT}"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from infra.openapi import generate, render; print(render(generate()), end='')",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == DOCUMENT.read_text()


def test_integers_are_json_schema_integers(document: dict) -> None:
    """`1098.0` is a valid JSON Schema integer, so the models take it; a fraction, a string or a bool
    is not one."""
    from pydantic import ValidationError

    from chatvault.models.api import CreateUploadRequest, MessageMetadata

    upload = {"filename": "a.png", "content_type": "image/png"}
    assert CreateUploadRequest.model_validate({**upload, "size": 1098.0}).size == 1098
    assert MessageMetadata.model_validate({"token_count": 7.0, "processing_time_ms": 0.0}).token_count == 7
    for bad in (1098.5, "1098", True, float("inf")):
        with pytest.raises(ValidationError):
            CreateUploadRequest.model_validate({**upload, "size": bad})
    size = document["components"]["schemas"]["CreateUploadRequest"]["properties"]["size"]
    assert size["type"] == "integer"


def test_what_the_document_calls_valid_the_models_accept(document: dict) -> None:
    """No non-standard formats (`uuid4` made tools send any string); PATCH declares null only where
    it is accepted (title), and the models agree."""
    from pydantic import ValidationError

    from chatvault.models.api import UUID4_PATTERN, CreateSessionRequest, UpdateSessionRequest

    text = json.dumps(document)
    assert '"format": "uuid4"' not in text
    session_id = document["components"]["schemas"]["CreateSessionRequest"]["properties"]["session_id"]
    assert UUID4_PATTERN in json.dumps(session_id)
    assert CreateSessionRequest.model_validate(
        {"session_id": "0B6F7D1E-9A39-4C8E-9C5A-7F1F3D0F4A11"}
    ).session_id
    patch = document["components"]["schemas"]["UpdateSessionRequest"]["properties"]
    assert "null" in json.dumps(patch["title"])
    assert "null" not in json.dumps(patch["status"])
    assert "null" not in json.dumps(patch["metadata"])
    assert UpdateSessionRequest.model_validate({"title": None}).title is None
    for refused in ({"status": None}, {"metadata": None}, {}):
        with pytest.raises(ValidationError):
            UpdateSessionRequest.model_validate(refused)
