"""The OpenAPI document is generated from the code and describes what the service really answers."""

from __future__ import annotations

import json

import pytest

from chatvault.http.errors import ERROR_MAP
from chatvault.http.routes import ROUTES
from chatvault.logic.get_api_document import api_document
from infra.openapi import DOCUMENT, generate, render


@pytest.fixture(scope="module")
def document() -> dict:
    return generate()


def test_the_committed_document_is_the_generated_one(document: dict) -> None:
    assert DOCUMENT.read_text() == render(document), "run `make openapi` and commit the result"


def test_every_route_is_documented_with_its_error_bodies(document: dict) -> None:
    documented = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert documented == {(m, p) for m, p, _ in ROUTES}
    for method, path, _ in ROUTES:
        operation = document["paths"][path][method.lower()]
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"
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


@pytest.mark.parametrize(
    ("mode", "scheme", "other"),
    [("anonymous", "SessionToken", "BearerJWT"), ("jwt", "BearerJWT", "SessionToken")],
)
def test_the_served_document_names_only_this_deployments_scheme(mode: str, scheme: str, other: str) -> None:
    served = json.loads(api_document(mode))
    assert set(served["components"]["securitySchemes"]) == {scheme}
    assert other not in json.dumps(served["paths"])
    get = served["paths"]["/api/v1/sessions/{session_id}"]["get"]
    assert get["security"] == [{scheme: []}]
