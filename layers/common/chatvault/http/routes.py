"""The public routes (method, path) and which function serves each. template.yaml's HttpApi events
must say the same (tests/unit/test_template.py checks); the fallback function answers the rest."""

from __future__ import annotations

import re

ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/api/v1/sessions", "CreateSessionFunction"),
    ("GET", "/api/v1/sessions", "ListSessionsFunction"),
    ("GET", "/api/v1/sessions/{session_id}", "GetSessionFunction"),
    ("PATCH", "/api/v1/sessions/{session_id}", "UpdateSessionFunction"),
    ("DELETE", "/api/v1/sessions/{session_id}", "DeleteSessionFunction"),
    ("POST", "/api/v1/sessions/{session_id}/messages", "AppendMessageFunction"),
    ("GET", "/api/v1/sessions/{session_id}/messages", "ListMessagesFunction"),
    ("POST", "/api/v1/sessions/{session_id}/uploads", "CreateUploadFunction"),
    ("GET", "/api/v1/openapi.json", "GetApiDocumentFunction"),
)


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", path) + "$")


_PATTERNS = tuple((method, _pattern(path)) for method, path, _ in ROUTES)


def allowed_methods(path: str) -> list[str]:
    """The methods some route accepts on this path; empty when no route has this path."""
    return sorted({method for method, pattern in _PATTERNS if pattern.match(path)})
