"""The embedded AWS: a moto server on loopback, holding the tables and bucket of template.yaml,
created from the template's own resource definitions (so local and deployed cannot drift)."""

from __future__ import annotations

import threading
from typing import Any

import boto3

from infra.local.template import REGION, Stack, physical_name

TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
)


def aws_client(service: str, endpoint: str | None = None) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def provision(stack: Stack, endpoint: str | None = None) -> dict[str, str]:
    """Create every table and bucket of the template (idempotent). Returns logical id -> name."""
    names: dict[str, str] = {}
    dynamodb = aws_client("dynamodb", endpoint)
    existing = set(dynamodb.list_tables()["TableNames"])
    for logical, props in stack.resources("AWS::DynamoDB::Table").items():
        name = physical_name(logical, "AWS::DynamoDB::Table")
        names[logical] = name
        if name in existing:
            continue
        dynamodb.create_table(TableName=name, **{k: props[k] for k in TABLE_KEYS if k in props})
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)

    s3 = aws_client("s3", endpoint)
    existing_buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for logical, props in stack.resources("AWS::S3::Bucket").items():
        name = physical_name(logical, "AWS::S3::Bucket")
        names[logical] = name
        if name in existing_buckets:
            continue
        s3.create_bucket(Bucket=name)
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "BucketEncryption" in props:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            ("Apply" + k if k == "ServerSideEncryptionByDefault" else k): v
                            for k, v in rule.items()
                        }
                        for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                    ]
                },
            )
        if "CorsConfiguration" in props:
            s3.put_bucket_cors(Bucket=name, CORSConfiguration=_cors(props["CorsConfiguration"]))
        if "LifecycleConfiguration" in props:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration=_lifecycle(props["LifecycleConfiguration"])
            )
    return names


def _cors(config: dict[str, Any]) -> dict[str, Any]:
    rename = {"MaxAge": "MaxAgeSeconds", "ExposedHeaders": "ExposeHeaders"}
    return {"CORSRules": [{rename.get(k, k): v for k, v in rule.items()} for rule in config["CorsRules"]]}


def _lifecycle(config: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in config["Rules"]:
        out: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"]}
        out["Filter"] = {"Prefix": rule.get("Prefix", "")}
        if "ExpirationInDays" in rule:
            out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            out["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            }
        rules.append(out)
    return {"Rules": rules}


_DYNAMODB_LOCK = threading.RLock()


def serialize_dynamodb() -> None:
    """Make the emulator's DynamoDB linearizable, as DynamoDB is.

    moto checks a transaction's conditions and then writes without a lock, and rolls a refused one
    back to a snapshot of the whole table: concurrent requests (the threaded server, parallel test
    threads) could interleave and lose writes. One lock around every DynamoDB call removes that."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler, "_serialized_by_chatvault", False):
        return
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    DynamoHandler._serialized_by_chatvault = True  # type: ignore[attr-defined]


def start_moto(port: int) -> Any:
    """A moto server in this process, on 127.0.0.1 only."""
    from moto.server import ThreadedMotoServer

    serialize_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server
