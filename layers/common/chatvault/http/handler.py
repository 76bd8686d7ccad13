"""Every function's entry point, written once: the logger's Lambda context (with the request id as
correlation id for the HTTP functions), the tracer's segment, the metrics flushed at the end, and for
functions told by an event, the event parsed and the function's deadline started. A function's app.py
is its routes (or its use case) and `lambda_handler = ...` from here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.core import deadline
from chatvault.core.observability import CORRELATION_PATH, logger, metrics, tracer

if TYPE_CHECKING:  # the event functions do not pay for the HTTP resolver's import
    from chatvault.http.resolver import ApiResolver

type Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def api_handler(app: ApiResolver, *, measured: bool = True) -> Handler:
    """An HTTP function's lambda_handler: each request resolved by `app` (whose resolver starts the
    deadline). `measured=False`: no trace segment and no metrics flush, for the functions that publish
    none (the API document, the route fallback)."""

    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return _observed(lambda_handler, measured=measured, correlation_id_path=CORRELATION_PATH)


def event_handler[E](
    parse: Callable[[Callable[[E, LambdaContext], dict[str, Any]]], Handler],
    use_case: Callable[[E, LambdaContext], dict[str, Any]],
) -> Handler:
    """A function told by an event (the schedule, an upload through EventBridge, the table's stream):
    `parse` is Powertools' parser or data-class decorator for the event's shape, and `use_case` runs
    with the parsed event once the deadline is started."""

    def lambda_handler(event: E, context: LambdaContext) -> dict[str, Any]:
        deadline.start(context)
        return use_case(event, context)

    return _observed(parse(lambda_handler), measured=True, correlation_id_path=None)


def _observed(handler: Handler, *, measured: bool, correlation_id_path: str | None) -> Handler:
    if measured:
        handler = tracer.capture_lambda_handler(metrics.log_metrics(handler))
    return logger.inject_lambda_context(handler, correlation_id_path=correlation_id_path)
