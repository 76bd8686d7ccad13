"""The embedded AWS of `make dev` answers as AWS does where the service depends on it."""

from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.table import Table

from tests.helpers import partition
from tests.integration.local_stack import LocalStack


@pytest.mark.http
def test_a_resent_transaction_gets_the_first_answer_as_from_dynamodb(stack: LocalStack) -> None:
    """botocore resends a TransactWriteItems with the same ClientRequestToken when it retries (after a
    read timeout, say); DynamoDB answers the repeat with the first call's success instead of running
    it again, where its condition would now fail."""
    ddb = stack.client("dynamodb")
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


@pytest.mark.http
def test_a_refused_transaction_leaves_every_item_as_it_was(stack: LocalStack) -> None:
    """The emulator rolls a refused transaction back item by item (moto's own rollback copies whole
    tables): what the earlier items of the transaction wrote is undone."""
    ddb = stack.client("dynamodb")
    table = "chatvault-local-SessionsTable"
    pk = str(uuid.uuid4())
    ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "a"}, "n": {"N": "1"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "gone"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "taken"}})
    refused = [
        {
            "Update": {
                "TableName": table,
                "Key": {"pk": {"S": pk}, "sk": {"S": "a"}},
                "UpdateExpression": "SET n = :two",
                "ExpressionAttributeValues": {":two": {"N": "2"}},
            }
        },
        {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": "new"}}}},
        {"Delete": {"TableName": table, "Key": {"pk": {"S": pk}, "sk": {"S": "gone"}}}},
        {
            "ConditionCheck": {
                "TableName": table,
                "Key": {"pk": {"S": pk}, "sk": {"S": "taken"}},
                "ConditionExpression": "attribute_not_exists(pk)",  # fails: the item exists
            }
        },
    ]

    with pytest.raises(ClientError) as error:
        ddb.transact_write_items(TransactItems=refused)

    assert error.value.response["Error"]["Code"] == "TransactionCanceledException"
    items = partition(pk, table, ddb)
    assert sorted((i["sk"]["S"], i.get("n", {}).get("N")) for i in items) == [
        ("a", "1"),
        ("gone", None),
        ("taken", None),
    ]


@pytest.mark.usefixtures("aws")
def test_a_transaction_does_not_copy_whole_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long history must not make every append slower (moto alone copies each table named)."""

    def refuse(*_: object) -> None:
        raise AssertionError("a whole table was copied")

    monkeypatch.setattr(Table, "__deepcopy__", refuse, raising=False)
    ddb = boto3.client("dynamodb")
    item = {"pk": {"S": str(uuid.uuid4())}, "sk": {"S": "#S"}}
    put = {"Put": {"TableName": "chatvault-local-SessionsTable", "Item": item}}
    ddb.transact_write_items(TransactItems=[put])
    with pytest.raises(ClientError):
        ddb.transact_write_items(
            TransactItems=[{"Put": {**put["Put"], "ConditionExpression": "attribute_not_exists(pk)"}}]
        )
