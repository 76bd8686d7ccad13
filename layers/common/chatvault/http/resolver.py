"""The HTTP API resolver every function builds on: validation at the edge with pydantic, the error
mapping of http/errors.py, the body-size limit, and who the caller is."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from chatvault import deadline
from chatvault.errors import ChatVaultError, PayloadTooLargeError, RouteNotFoundError
from chatvault.http import errors
from chatvault.http.errors import PRIVATE_HEADERS
from chatvault.logic.identity import Caller
from chatvault.observability import logger
from chatvault.settings import get_settings


class ApiResolver(APIGatewayHttpResolver):
    """APIGatewayHttpResolver with the service's conventions. One route per function."""

    def __init__(self) -> None:
        super().__init__(enable_validation=True)
        self.exception_handler(ChatVaultError)(self._on_domain_error)
        self.exception_handler(RequestValidationError)(self._on_validation_error)
        self.exception_handler(Exception)(self._on_unexpected_error)
        self.not_found()(self._on_not_found)

    # -- request facts -----------------------------------------------------------------------------

    @property
    def request_id(self) -> str:
        return self.current_event.request_context.request_id or "unknown"

    @property
    def caller(self) -> Caller:
        event = self.current_event
        claims = event.request_context.authorizer.jwt_claim if event.request_context.authorizer else {}
        subject = claims.get("sub") if isinstance(claims, dict) else None
        return Caller(
            token=event.headers.get("x-session-token") or None,
            subject=subject or None,
            client_ip=event.request_context.http.source_ip or None,
        )

    # -- responses ---------------------------------------------------------------------------------

    @staticmethod
    def reply(model: BaseModel, status: int = 200) -> Response[str]:
        return Response(
            status_code=status,
            content_type=content_types.APPLICATION_JSON,
            body=model.model_dump_json(),
            headers=dict(PRIVATE_HEADERS),
        )

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        deadline.start(context)
        if _body_bytes(event) > get_settings().max_body_bytes:
            request_id = str(event.get("requestContext", {}).get("requestId", "unknown"))
            return _proxy_result(errors.from_domain(PayloadTooLargeError(), request_id))
        return super().resolve(_as_json(event), context)

    # -- error handlers (all mapping lives in http/errors.py) --------------------------------------

    def _on_domain_error(self, exc: ChatVaultError) -> Response[str]:
        return errors.from_domain(exc, self.request_id)

    def _on_validation_error(self, exc: RequestValidationError) -> Response[str]:
        return errors.from_validation(list(exc.errors()), self.request_id)

    def _on_not_found(self, _exc: Exception) -> Response[str]:
        return errors.from_domain(RouteNotFoundError(), self.request_id)

    def _on_unexpected_error(self, exc: Exception) -> Response[str]:
        logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
        return errors.internal(self.request_id)


def _body_bytes(event: Mapping[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode("utf-8")) if isinstance(body, str) else 0


def _as_json(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The API speaks JSON only: a body is parsed as JSON whatever Content-Type the client sent."""
    headers = event.get("headers") or {}
    if not event.get("body") or str(headers.get("content-type", "")).startswith("application/json"):
        return event
    return {**event, "headers": {**headers, "content-type": "application/json"}}


def _proxy_result(response: Response[str]) -> dict[str, Any]:
    """A response built outside route handling, in API Gateway's payload 2.0 result shape."""
    headers = {"Content-Type": content_types.APPLICATION_JSON, **response.headers}
    body = response.body if isinstance(response.body, str) else base64.b64encode(b"").decode()
    return {"statusCode": response.status_code, "headers": headers, "body": body, "isBase64Encoded": False}
