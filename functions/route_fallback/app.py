"""Every request no other route takes (RouteFallbackFunction, `ANY /{proxy+}`): 405 with `Allow` when
the path exists under another method, else 404, in the service's error format, whatever the method."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.core.observability import CORRELATION_PATH, logger
from chatvault.http.resolver import ApiResolver
from chatvault.http.route_fallback import route_refusal

app = ApiResolver()


@app.not_found
def fallback(_: Exception) -> Response[str]:
    return app.error_response(route_refusal(app.current_event.path))


@logger.inject_lambda_context(correlation_id_path=CORRELATION_PATH)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
