"""GET /api/v1/openapi.json: the OpenAPI document generated from the code at build time (see
infra/openapi.py), narrowed to this deployment's identity mode."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from chatvault.settings import get_settings

_SCHEME_OF_MODE = {"anonymous": "SessionToken", "jwt": "BearerJWT"}


@lru_cache(maxsize=2)
def api_document(auth_mode: str | None = None) -> str:
    mode = auth_mode or get_settings().auth_mode
    document: dict[str, Any] = json.loads(resources.files("chatvault").joinpath("openapi.json").read_text())
    keep = _SCHEME_OF_MODE[mode]
    schemes = document.get("components", {}).get("securitySchemes", {})
    for name in list(schemes):
        if name != keep:
            del schemes[name]
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if "security" in operation:
                operation["security"] = [req for req in operation["security"] if not req or keep in req]
    return json.dumps(document, separators=(",", ":"))
