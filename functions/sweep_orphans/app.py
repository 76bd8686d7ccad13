"""The scheduled orphan sweep (SweepOrphansFunction, EventBridge `rate(30 minutes)`)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.core.observability import logger
from chatvault.http.handler import event_handler
from chatvault.logic.sweep_orphans import sweep_orphans


def sweep(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    logger.info("sweep started", extra={"schedule_event": event.id})
    return sweep_orphans(context.get_remaining_time_in_millis).model_dump()


lambda_handler = event_handler(event_parser(model=EventBridgeModel), sweep)
