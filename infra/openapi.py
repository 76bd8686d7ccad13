"""Generate the OpenAPI document from the code: every function's Powertools resolver describes its own
route (models, parameters, documented responses); Powertools' OpenAPIMerge joins them. The result is
written into the layer (chatvault/openapi.json), where GetApiDocumentFunction serves it.

    make openapi     # regenerate after changing a route or a model (a test fails while they differ)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "layers/common/chatvault/openapi.json"


def generate() -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

    from chatvault.http.docs import SECURITY_SCHEMES
    from infra.template import Stack

    merge = OpenAPIMerge(
        title="chatvault sessions API",
        version="1.0.0",
        description=(
            "Privacy-first conversation sessions for chatbots. Every error body is "
            '`{"error": {"code", "message", "request_id"[, "details"]}}`. Unknown routes are 404 '
            "`not_found`; a method a route does not take is 405 `method_not_allowed` with `Allow`."
        ),
        security_schemes=SECURITY_SCHEMES,
        on_conflict="error",
    )
    for fn in Stack.from_template().functions().values():
        http_routes = [e for e in fn.events.values() if e.get("Type") == "HttpApi"]
        if http_routes and "{proxy+}" not in http_routes[0]["Properties"]["Path"]:
            merge.add_file(fn.code_dir / "app.py")
    document: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    document = _without_unused_schemas(_without_default_422(document))
    return _with_links_from_create(_with_session_token(document))


SESSION_ROUTE = "/api/v1/sessions/{session_id}"


def _session_operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path, item in sorted(document.get("paths", {}).items())
        if path.startswith(SESSION_ROUTE)
        for _, operation in sorted(item.items())
    ]


def _with_session_token(document: dict[str, Any]) -> dict[str, Any]:
    """Every route of one session takes its token as a header parameter (http/docs.py says why)."""
    from chatvault.http.docs import SESSION_TOKEN_PARAMETER

    for operation in _session_operations(document):
        operation.setdefault("parameters", []).append(dict(SESSION_TOKEN_PARAMETER))
    return document


def _with_links_from_create(document: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI links from a created session to every route of it, with its id and token, so that tools
    (schemathesis' stateful phase, client generators) can follow create -> use -> delete."""
    from chatvault.http.docs import SESSION_TOKEN_HEADER

    created = document["paths"]["/api/v1/sessions"]["post"]["responses"]["201"]
    created["links"] = {
        operation["operationId"]: {
            "operationId": operation["operationId"],
            "parameters": {
                "path.session_id": "$response.body#/session_id",
                f"header.{SESSION_TOKEN_HEADER}": "$response.body#/session_token",
            },
        }
        for operation in _session_operations(document)
    }
    return document


def _without_default_422(document: dict[str, Any]) -> dict[str, Any]:
    """Powertools adds a 422 with its own HTTPValidationError body to every validated route. Where a
    route can fail validation it documents our 422 (ErrorOut) instead; where it cannot (a string path
    parameter only), the default entry describes a response that never happens, so it goes."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            default = operation.get("responses", {}).get("422", {})
            if "HTTPValidationError" in json.dumps(default):
                del operation["responses"]["422"]
    return document


def _without_unused_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """Drop component schemas nothing refers to (Powertools adds its default validation bodies)."""
    schemas = document.get("components", {}).get("schemas", {})
    while True:
        text = json.dumps({k: v for k, v in document.items() if k != "components"}) + json.dumps(schemas)
        used = set(re.findall(r"#/components/schemas/([A-Za-z0-9_]+)", text))
        unused = [name for name in schemas if name not in used]
        if not unused:
            return document
        for name in unused:
            del schemas[name]


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> int:
    DOCUMENT.write_text(render(generate()))
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
