"""Requests that match no route: 405 when the path is known under other methods, else 404."""

from __future__ import annotations

from chatvault.core.errors import ChatVaultError, MethodNotAllowedError, RouteNotFoundError
from chatvault.http.routes import allowed_methods


def route_refusal(path: str) -> ChatVaultError:
    methods = allowed_methods(path)
    return MethodNotAllowedError(methods) if methods else RouteNotFoundError()
