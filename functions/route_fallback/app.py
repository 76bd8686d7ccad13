"""Every request no other route takes (RouteFallbackFunction, `ANY /{proxy+}`): 405 with `Allow` when
the path exists under another method, else 404, in the service's error format, whatever the method."""

from aws_lambda_powertools.event_handler import Response

from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.http.route_fallback import route_refusal

app = ApiResolver()


@app.not_found
def fallback(_: Exception) -> Response[str]:
    return app.error_response(route_refusal(app.current_event.path))


lambda_handler = api_handler(app, measured=False)
