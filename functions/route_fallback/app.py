"""Every request no other route takes (RouteFallbackFunction, `ANY /{proxy+}`): 405 with `Allow` when
the path exists under another method, else 404, in the service's error format."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.http.resolver import ApiResolver
from chatvault.logic.route_fallback import route_fallback
from chatvault.observability import CORRELATION_PATH, logger

app = ApiResolver()


@app.route("/.+", method=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def fallback() -> None:
    route_fallback(app.current_event.path)


@logger.inject_lambda_context(correlation_id_path=CORRELATION_PATH)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
