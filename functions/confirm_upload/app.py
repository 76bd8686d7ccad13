"""An object reached the uploads bucket (ConfirmUploadFunction, S3 ObjectCreated through EventBridge)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.core import deadline
from chatvault.core.observability import logger, metrics, tracer
from chatvault.logic.confirm_upload import confirm_upload


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=S3EventNotificationEventBridgeModel)
def lambda_handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    deadline.start(context)
    return confirm_upload(event.detail.bucket.name, [event.detail.object.key]).model_dump()
