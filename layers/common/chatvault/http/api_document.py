"""GET /api/v1/openapi.json: the OpenAPI document generated from the code at build time (see
infra/openapi.py), narrowed to this deployment: its identity mode (anonymous: session tokens; jwt:
bearer tokens; both: either; the service writer's SigV4 in every mode), and the limits it was deployed with
(MaxUploadBytes, AllowedUploadTypes), so that what the document calls valid is what it accepts.

MaxMessageChars is not written as a `maxLength`: longer content is 413 `message_too_large` by contract,
not the 422 a schema violation would be; the field's description and the 413 response say so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

from chatvault.core.settings import Settings, get_settings
from chatvault.http.docs import SESSION_TOKEN_HEADER

BEARER = "BearerJWT"
CLAIM_ROUTE = "/api/v1/sessions/{session_id}/claim"


@lru_cache(maxsize=2)
def api_document(auth_mode: str | None = None) -> str:
    settings = get_settings()
    document: dict[str, Any] = json.loads(resources.files("chatvault").joinpath("openapi.json").read_text())
    mode = auth_mode or settings.auth_mode
    if mode != "both":
        _without_claim(document)
    if mode == "jwt":
        _for_jwt(document)
    elif mode == "both":
        _for_both(document)
    else:
        _for_anonymous(document)
    _for_limits(document, settings)
    return json.dumps(document, separators=(",", ":"))


def _operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path_item in document.get("paths", {}).values():
        yield from path_item.values()


def _is_token(parameter: dict[str, Any]) -> bool:
    return parameter.get("in") == "header" and parameter.get("name") == SESSION_TOKEN_HEADER


def _without_claim(document: dict[str, Any]) -> None:
    """Claiming exists in both mode only (elsewhere it is 404): neither the route nor a link to it."""
    item = document["paths"].pop(CLAIM_ROUTE)
    claim_ids = {operation["operationId"] for operation in item.values()}
    for operation in _operations(document):
        for response in operation.get("responses", {}).values():
            for name in [
                n for n, link in response.get("links", {}).items() if link["operationId"] in claim_ids
            ]:
                del response["links"][name]


def _without_bearer(operation: dict[str, Any]) -> None:
    kept = [r for r in operation.get("security", []) if BEARER not in r]
    if kept:
        operation["security"] = kept
    else:
        operation.pop("security", None)


def _for_anonymous(document: dict[str, Any]) -> None:
    """No bearer tokens (only the service writer's signatures), and the session token header is
    required."""
    document.get("components", {}).get("securitySchemes", {}).pop(BEARER, None)
    for operation in _operations(document):
        _without_bearer(operation)
        for parameter in operation.get("parameters", []):
            if _is_token(parameter):
                parameter["required"] = True


def _for_both(document: dict[str, Any]) -> None:
    """Either credential: the bearer token is optional (`{}` in the security list), but for the
    claim, which needs both."""
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            if path != CLAIM_ROUTE and {BEARER: []} in operation.get("security", []):
                operation["security"] = [{}, {BEARER: []}]


def _for_jwt(document: dict[str, Any]) -> None:
    """No session tokens: the header parameter goes, and so does the token the links would pass."""
    for operation in _operations(document):
        if "parameters" in operation:
            operation["parameters"] = [p for p in operation["parameters"] if not _is_token(p)]
        for response in operation.get("responses", {}).values():
            for link in response.get("links", {}).values():
                link["parameters"].pop(f"header.{SESSION_TOKEN_HEADER}", None)


def _for_limits(document: dict[str, Any], settings: Settings) -> None:
    upload = document["components"]["schemas"]["CreateUploadRequest"]["properties"]
    upload["size"]["maximum"] = settings.max_upload_bytes
    upload["content_type"]["enum"] = list(settings.allowed_upload_types)
    for request in ("CreateSessionRequest", "UpdateSessionRequest"):  # this deployment's RetentionHours
        document["components"]["schemas"][request]["properties"]["retention_hours"]["maximum"] = (
            settings.retention_hours
        )
