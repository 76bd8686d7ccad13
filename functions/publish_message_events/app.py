"""New messages in the sessions table's stream, told to the bot without their content
(PublishMessageEventsFunction)."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.http.handler import event_handler
from chatvault.logic.publish_message_events import NewMessage, publish


def publish_new(event: DynamoDBStreamEvent, _: LambdaContext) -> dict[str, Any]:
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


lambda_handler = event_handler(event_source(data_class=DynamoDBStreamEvent), publish_new)
