"""New messages in the sessions table's stream, told to the bot without their content
(PublishMessageEventsFunction)."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.core import deadline
from chatvault.core.observability import logger, metrics, tracer
from chatvault.logic.publish_message_events import NewMessage, publish


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def lambda_handler(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, Any]:
    deadline.start(context)
    records = [
        NewMessage(
            sequence_number=str(record.dynamodb.sequence_number),
            session_id=str(record.dynamodb.keys["pk"]),
            sort_key=str(record.dynamodb.keys["sk"]),
        )
        for record in event.records
        if record.dynamodb is not None and record.dynamodb.keys
    ]
    failed = publish(records)
    # ReportBatchItemFailures: Lambda retries the batch from the first failed record
    return {"batchItemFailures": [{"itemIdentifier": failed}] if failed else []}
