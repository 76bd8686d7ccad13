"""An object reached the uploads bucket (ConfirmUploadFunction, S3 ObjectCreated through EventBridge)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.http.handler import event_handler
from chatvault.logic.confirm_upload import confirm_upload


def confirm(event: S3EventNotificationEventBridgeModel, _: LambdaContext) -> dict[str, Any]:
    return confirm_upload(event.detail.bucket.name, [event.detail.object.key]).model_dump()


lambda_handler = event_handler(event_parser(model=S3EventNotificationEventBridgeModel), confirm)
