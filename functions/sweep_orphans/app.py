"""The scheduled orphan sweep (SweepOrphansFunction, EventBridge `rate(30 minutes)`)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.core import deadline
from chatvault.core.observability import logger, metrics, tracer
from chatvault.logic.sweep_orphans import sweep_orphans


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    deadline.start(context)
    logger.info("sweep started", extra={"schedule_event": event.id})
    return sweep_orphans(context.get_remaining_time_in_millis).model_dump()
