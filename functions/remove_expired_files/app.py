"""Upload records removed by DynamoDB's TTL, from the sessions table's stream: their files deleted
(RemoveExpiredFilesFunction)."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.http.handler import event_handler
from chatvault.logic.remove_expired_files import ExpiredRecord, remove_expired_files


def remove_files(event: DynamoDBStreamEvent, _: LambdaContext) -> dict[str, Any]:
    records = [
        ExpiredRecord(session_id=str(record.dynamodb.keys["pk"]), sort_key=str(record.dynamodb.keys["sk"]))
        for record in event.records
        if record.dynamodb is not None and record.dynamodb.keys
    ]
    return {"removed": remove_expired_files(records)}


lambda_handler = event_handler(event_source(data_class=DynamoDBStreamEvent), remove_files)
