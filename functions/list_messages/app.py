"""GET /api/v1/sessions/{session_id}/messages: a page of history (ListMessagesFunction)."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.list_messages import list_messages
from chatvault.models.api import MessageListOut

app = ApiResolver()

# `order` and `cursor` are independent optional parameters, so every pair of them must be answered:
# the cursor decides, and a page continues in the order of the page whose `next_cursor` it is.
DESCRIPTION = (
    "Pages follow `next_cursor`. A cursor carries the order of the page that returned it: with "
    "`cursor`, `order` is ignored (any valid value is accepted), so the next page always continues "
    "the previous one."
)


@app.get(
    "/api/v1/sessions/<session_id>/messages",
    summary="A page of the history, in the order appends were accepted",
    description=DESCRIPTION,
    tags=["messages"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, MessageListOut, "A page of messages.", 400, 401, 404, 422),
)
@app.get(
    "/api/v1/service/sessions/<session_id>/messages",
    summary="A page of the history (the bot's back end, IAM)",
    description=DESCRIPTION,
    tags=["service"],
    security=docs.SIGV4_AUTH,
    responses=docs.service_responses(200, MessageListOut, "A page of messages.", 400, 404, 422),
)
@tracer.capture_method
def list_(
    session_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    order: Annotated[
        Literal["asc", "desc"],
        Query(description="`asc` (oldest first) or `desc`; ignored with a `cursor`, which keeps its own."),
    ] = "asc",
    cursor: Annotated[
        str | None,
        Query(min_length=1, description="`next_cursor` of the previous page; it continues in that order."),
    ] = None,
) -> Response[str]:
    return app.reply(list_messages(session_id, app.caller, limit, order, cursor))


lambda_handler = api_handler(app)
