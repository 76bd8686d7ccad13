"""The HTTP API resolver every function builds on: validation at the edge with pydantic, the error
mapping of http/errors.py, the body-size limit, and who the caller is."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from chatvault.core import deadline
from chatvault.core.errors import (
    ChatVaultError,
    InvalidJsonError,
    PayloadTooLargeError,
    RouteNotFoundError,
    ServiceCallerRequiredError,
    ValidationFailedError,
)
from chatvault.core.observability import logger
from chatvault.core.settings import get_settings
from chatvault.http import body, docs, errors
from chatvault.http.errors import PRIVATE_HEADERS
from chatvault.logic.rules.access import Caller

# The service writer's routes (IAM-authorized at API Gateway): the chatbot's own back end
SERVICE_PREFIX = "/api/v1/service/"


class ApiResolver(APIGatewayHttpResolver):
    """APIGatewayHttpResolver with the service's conventions. One route per function."""

    def __init__(self, switched_on: Callable[[], bool] | None = None) -> None:
        """`switched_on`: the function's routes exist only while it says so (the chat's, with a
        model); otherwise every request is the 404 of a route that does not exist, before validation."""
        super().__init__(enable_validation=True, json_body_deserializer=body.parse)
        self.switched_on = switched_on
        self.configure_openapi(
            title="chatvault sessions API", version="1.0.0", security_schemes=docs.SECURITY_SCHEMES
        )
        self.use(middlewares=[_refuse_unknown_query_parameters])
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
        """Who is calling. On the service writer's routes, the IAM principal API Gateway verified
        (403 if the event carries none: the route was reached without its IAM authorization). Else the
        session token header and the JWT subject: from API Gateway's JWT authorizer (jwt mode), or
        verified here when a bearer token was sent (both mode: 401 if it is not valid)."""
        event = self.current_event
        context = event.request_context
        client_ip = context.http.source_ip or None
        if event.route_key.partition(" ")[2].startswith(SERVICE_PREFIX):
            arn = context.authorizer.iam.user_arn or context.authorizer.iam.caller_id
            if not arn:
                raise ServiceCallerRequiredError()
            return Caller(service=arn, client_ip=client_ip)
        settings = get_settings()
        subject: str | None = None
        if settings.auth_mode == "jwt":
            claims = context.authorizer.jwt_claim
            subject = str(claims.get("sub") or "") or None
        elif settings.auth_mode == "both" and event.headers.get("authorization"):
            from chatvault.logic.rules import bearer  # only requests with a bearer token pay for its import

            subject = bearer.subject_of(event.headers["authorization"])
        return Caller(
            token=event.headers.get("x-session-token") or None, subject=subject, client_ip=client_ip
        )

    # -- responses ---------------------------------------------------------------------------------

    @staticmethod
    def reply(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
        return Response(
            status_code=status,
            content_type=content_types.APPLICATION_JSON,
            body=model.model_dump_json(),
            headers={**PRIVATE_HEADERS, **(headers or {})},
        )

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        deadline.start(context)
        request_id = str(event.get("requestContext", {}).get("requestId", "unknown"))
        if self.switched_on is not None and not self.switched_on():
            return _proxy_result(errors.from_domain(RouteNotFoundError(), request_id))
        if _body_bytes(event) > get_settings().max_body_bytes:
            return _proxy_result(errors.from_domain(PayloadTooLargeError(), request_id))
        as_json = _as_json(event)
        if as_json is None:
            return _proxy_result(errors.from_domain(InvalidJsonError(), request_id))
        if str(as_json.get("body") or "").strip() == "null":  # every request body is a JSON object
            return _proxy_result(
                errors.from_domain(ValidationFailedError("body", "must be a JSON object"), request_id)
            )
        return super().resolve(as_json, context)

    # -- error handlers (all mapping lives in http/errors.py) --------------------------------------

    def error_response(self, exc: ChatVaultError) -> Response[str]:
        return errors.from_domain(exc, self.request_id)

    def _on_domain_error(self, exc: ChatVaultError) -> Response[str]:
        return self.error_response(exc)

    def _on_validation_error(self, exc: RequestValidationError) -> Response[str]:
        return errors.from_validation(list(exc.errors()), self.request_id)

    def _on_not_found(self, _exc: Exception) -> Response[str]:
        return errors.from_domain(RouteNotFoundError(), self.request_id)

    def _on_unexpected_error(self, exc: Exception) -> Response[str]:
        logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
        return errors.internal(self.request_id)


def _refuse_unknown_query_parameters(
    app: APIGatewayHttpResolver, next_middleware: NextMiddleware
) -> Response[Any]:
    """Unknown query parameters are refused (422), as unknown body fields are: a misspelt `limt=5`
    should not silently return 50 items."""
    route = app.context.get("_route")
    if route is None or route.func.__name__ == "not_found_handler":
        return next_middleware(app)  # no route: 404/405 answers first
    known = {field.alias for field in route.dependant.query_params}
    unknown = sorted(set(app.current_event.query_string_parameters or {}) - known)
    if unknown:
        raise ValidationFailedError(f"query.{unknown[0]}", "is not a parameter of this route")
    return next_middleware(app)


def _body_bytes(event: Mapping[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode("utf-8")) if isinstance(body, str) else 0


def _as_json(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The API speaks JSON only: a body is parsed as JSON, as UTF-8 text, whatever Content-Type the
    client sent (API Gateway passes bodies it deems binary base64-encoded). None: not UTF-8 text."""
    body = event.get("body")
    if not body:
        return event
    headers = {**(event.get("headers") or {}), "content-type": "application/json"}
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
    return {**event, "headers": headers, "body": body, "isBase64Encoded": False}


def _proxy_result(response: Response[str]) -> dict[str, Any]:
    """A response built outside route handling, in API Gateway's payload 2.0 result shape."""
    headers = {"Content-Type": content_types.APPLICATION_JSON, **response.headers}
    body = response.body if isinstance(response.body, str) else base64.b64encode(b"").decode()
    return {"statusCode": response.status_code, "headers": headers, "body": body, "isBase64Encoded": False}
