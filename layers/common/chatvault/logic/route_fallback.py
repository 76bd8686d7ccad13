"""Requests that match no route: 405 when the path is known under other methods, else 404."""

from __future__ import annotations

from typing import NoReturn

from chatvault.errors import MethodNotAllowedError, RouteNotFoundError
from chatvault.http.routes import allowed_methods


def route_fallback(path: str) -> NoReturn:
    methods = allowed_methods(path)
    if methods:
        raise MethodNotAllowedError(methods)
    raise RouteNotFoundError()
