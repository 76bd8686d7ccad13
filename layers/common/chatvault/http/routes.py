"""The public routes (method, path), as the handlers' decorators declare them: read from the OpenAPI
document generated from those decorators (infra/openapi.py), so no table of routes is written by
hand. The fallback function answers the rest with 404 or 405; tests/infrastructure/test_template.py
checks that template.yaml routes each one to the function whose handler declares it."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def routes() -> tuple[tuple[str, str], ...]:
    document = json.loads(resources.files("chatvault").joinpath("openapi.json").read_text())
    return tuple(
        sorted((method.upper(), path) for path, item in document["paths"].items() for method in item)
    )


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", path) + "$")


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((method, _pattern(path)) for method, path in routes())


def allowed_methods(path: str) -> list[str]:
    """The methods some route accepts on this path; empty when no route has this path."""
    return sorted({method for method, pattern in _patterns() if pattern.match(path)})
