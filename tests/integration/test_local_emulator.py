"""The embedded AWS of `make dev` answers as AWS does where the service depends on it."""

from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.local_stack import LocalStack

pytestmark = pytest.mark.http


def test_a_resent_transaction_gets_the_first_answer_as_from_dynamodb(stack: LocalStack) -> None:
    """botocore resends a TransactWriteItems with the same ClientRequestToken when it retries (after a
    read timeout, say); DynamoDB answers the repeat with the first call's success instead of running
    it again, where its condition would now fail."""
    ddb = boto3.client("dynamodb", endpoint_url=stack.moto, region_name="us-east-1")
    pk = str(uuid.uuid4())
    request = {
        "TransactItems": [
            {
                "Put": {
                    "TableName": "chatvault-local-SessionsTable",
                    "Item": {"pk": {"S": pk}, "sk": {"S": "#S"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ],
        "ClientRequestToken": f"first-{pk}",
    }
    ddb.transact_write_items(**request)
    ddb.transact_write_items(**request)  # the retry: same token, same body

    with pytest.raises(ClientError) as refused:  # a new call (new token) runs, and fails its condition
        ddb.transact_write_items(**{**request, "ClientRequestToken": f"second-{pk}"})
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
