"""The embedded AWS: a moto server on loopback, holding the tables and bucket of template.yaml,
created from the template's own resource definitions (so local and deployed cannot drift)."""

from __future__ import annotations

import contextlib
import copy
import json
import secrets as secrets_module
import threading
import time
from typing import Any

import boto3

from infra.template import REGION, Stack, physical_name

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
        stream = props.get("StreamSpecification")
        dynamodb.create_table(
            TableName=name,
            **{k: props[k] for k in TABLE_KEYS if k in props},
            **({"StreamSpecification": {"StreamEnabled": True, **stream}} if stream else {}),
        )
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)

    secrets = aws_client("secretsmanager", endpoint)
    for logical in stack.resources("AWS::SecretsManager::Secret"):
        name = physical_name(logical, "AWS::SecretsManager::Secret")
        names[logical] = name
        with contextlib.suppress(secrets.exceptions.ResourceExistsException):
            secrets.create_secret(Name=name, SecretString=secrets_module.token_hex(32))

    sqs = aws_client("sqs", endpoint)
    queues = stack.resources("AWS::SQS::Queue")
    # dead-letter queues first: a queue's redrive policy names its dead-letter queue's ARN
    for logical, props in sorted(queues.items(), key=lambda item: "RedrivePolicy" in item[1]):
        name = physical_name(logical, "AWS::SQS::Queue", fifo=bool(props.get("FifoQueue")))
        names[logical] = name
        sqs.create_queue(QueueName=name, Attributes=_queue_attributes(props))

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
        if "VersioningConfiguration" in props:  # the template has none: a test keeps it that way
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
            )
        if "CorsConfiguration" in props:
            s3.put_bucket_cors(Bucket=name, CORSConfiguration=_cors(props["CorsConfiguration"]))
        if "LifecycleConfiguration" in props:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration=_lifecycle(props["LifecycleConfiguration"])
            )
        notifications = props.get("NotificationConfiguration", {})
        if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            # ObjectCreated and the rest go to the emulator's EventBridge (infra/local/events.py)
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
    return names


# CloudFormation's queue properties that are SQS queue attributes of the same name and meaning
QUEUE_ATTRIBUTES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "SqsManagedSseEnabled",
)


def _queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    attributes = {
        k: str(props[k]).lower() if isinstance(props[k], bool) else str(props[k])
        for k in QUEUE_ATTRIBUTES
        if k in props
    }
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    return attributes


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
        if rule.get("ExpiredObjectDeleteMarker"):
            out["Expiration"] = {"ExpiredObjectDeleteMarker": True}
        if "NoncurrentVersionExpiration" in rule:
            out["NoncurrentVersionExpiration"] = {
                "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
            }
        if "AbortIncompleteMultipartUpload" in rule:
            out["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            }
        rules.append(out)
    return {"Rules": rules}


_DYNAMODB_LOCK = threading.RLock()
TOKEN_SECONDS = 600  # how long DynamoDB honours a ClientRequestToken
_TOKENS: dict[str, tuple[float, str, Any]] = {}  # token -> (when, request body, response)


def serialize_dynamodb() -> None:
    """Make the emulator's DynamoDB linearizable, as DynamoDB is, and make TransactWriteItems
    idempotent under its ClientRequestToken, as DynamoDB does.

    moto checks a transaction's conditions and then writes without a lock, and rolls a refused one
    back to a snapshot of the whole table: concurrent requests (the threaded server, parallel test
    threads) could interleave and lose writes. One lock around every DynamoDB call removes that.

    botocore puts one ClientRequestToken on each TransactWriteItems and resends it when it retries
    (after a read timeout, say); DynamoDB answers such a repeat with the first call's success instead
    of running it again. moto ignores the token: a slow emulator call that outlived the client's
    timeout came back as a failed condition (a create answered 409 for its own write). The first
    success is replayed here for an identical repeat within the token's 10 minutes.

    And a transaction costs what it touches, not the size of its tables (see below)."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler, "_serialized_by_chatvault", False):
        return
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            token = _transaction_token(self)
            if token is None:
                return original(self)
            body = str(self.body)  # before the call: moto replaces it with the parsed request
            now = time.monotonic()
            seen = _TOKENS.get(token)
            if seen is not None and now - seen[0] < TOKEN_SECONDS and seen[1] == body:
                return seen[2]
            response = original(self)
            if str(response[0]) == "200":
                for old in [t for t, (at, _, _) in _TOKENS.items() if now - at >= TOKEN_SECONDS]:
                    del _TOKENS[old]
                _TOKENS[token] = (now, body, response)
            return response

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    DynamoHandler._serialized_by_chatvault = True  # type: ignore[attr-defined]
    _targeted_transaction_rollback()


def _targeted_transaction_rollback() -> None:
    """moto snapshots each table a transaction names (a deep copy of the whole table) to roll a
    refused one back: seconds per transaction once a table holds a long history, longer than a
    client's read timeout. The snapshot here is of the items the transaction names, and a refused
    transaction puts exactly those back: the same outcome, at the cost of the transaction's size."""
    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    class _TablesKeptInPlace:  # stands in for the `copy` module inside moto's DynamoDB backend
        @staticmethod
        def deepcopy(value: Any) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value)

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for entry in transact_items:
            for op in entry.values():
                name = op.get("TableName")
                if name not in self.tables:
                    continue  # moto refuses the transaction before writing anything
                table = self.tables[name]
                key = op.get("Key") or {
                    a: op["Item"][a]
                    for a in (table.hash_key_attr, table.range_key_attr)
                    if a and a in op.get("Item", {})
                }
                try:
                    current = self.get_item(name, key)
                except Exception:  # a malformed key: moto refuses the transaction before writing
                    continue
                saved.append((name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        try:
            original(self, transact_items)
        except Exception:
            for name, key, attributes in reversed(saved):
                if attributes is not None:
                    self.put_item(name, attributes)
                elif self.get_item(name, key) is not None:
                    self.delete_item(name, key)
            raise

    models.copy = _TablesKeptInPlace  # type: ignore[attr-defined,assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _transaction_token(handler: Any) -> str | None:
    if handler._get_action() != "TransactWriteItems":
        return None
    try:
        token = json.loads(handler.body or "{}").get("ClientRequestToken")
    except ValueError:
        return None
    return str(token) if token else None


def _cors_on_presigned_posts() -> None:
    """moto answers a browser's preflight from the bucket's CORS rules but leaves them off the answer
    to the POST itself (S3 sends Access-Control-Allow-Origin there too): added here, from the same rules.
    And moto allows any method of an origin a rule names; S3 only a rule's AllowedMethods (a GET of an
    object from a browser needs GET in them): the headers are left off when no rule allows the method."""
    from moto.s3.responses import S3Response
    from moto.s3.utils import cors_matches_origin

    if getattr(S3Response, "_cors_by_chatvault", False):
        return
    any_method = S3Response._get_cors_headers_other

    def allowed_methods_only(self: Any) -> dict[str, Any]:
        headers: dict[str, Any] = any_method(self)
        if not headers:
            return headers
        origin = self.headers.get("Origin")
        rules = self.backend.get_bucket(self.bucket_name).cors
        for rule in rules:
            if cors_matches_origin(origin, rule.allowed_origins or []) and self.method in (
                rule.allowed_methods or []
            ):
                return headers
        return {}

    S3Response._get_cors_headers_other = allowed_methods_only  # type: ignore[method-assign]
    original = S3Response._bucket_response_post

    def post(self: Any, request: Any, bucket_name: str) -> Any:
        response = original(self, request, bucket_name)
        if isinstance(response, tuple):
            status, headers, body = response
            return status, {**self._get_cors_headers_other(), **headers}, body
        return 200, self._get_cors_headers_other(), response

    S3Response._bucket_response_post = post  # type: ignore[method-assign]
    S3Response._cors_by_chatvault = True  # type: ignore[attr-defined]


DEDUPLICATION_SECONDS = 300  # SQS's deduplication interval (FIFO)


def serialize_sqs() -> None:
    """Four things the emulator's SQS does differently from SQS, which the message events meet:

    - moto deletes a message by rebuilding the queue's list without its lock, so a message sent at
      that moment (the publisher's, while the bot deletes what it answered) could be lost, and a
      receive racing a delete could fail on the in-flight set changing under it. Every receive, send,
      delete and visibility change of a queue holds that queue's lock here.
    - moto forgets a FIFO message's deduplication id once the message is deleted; SQS drops a repeat
      for 5 minutes after the first was sent, whatever became of it. Remembered here (per message
      group when DeduplicationScope is messageGroup).
    - moto takes a message out of the in-flight set only when it reaches it again, so when a FIFO
      group's first message and a later one both came back (their visibility timeout passed), the
      first was skipped as "its group is in flight" (the later one still counted) and the later one
      delivered before it. Every message back in sight leaves the in-flight set before a receive.
    - a long poll of a FIFO queue whose visible messages all belong to a group in flight spins for
      its whole wait in moto (holding the lock, with the above); here it sleeps until a message is
      sent or a second has passed."""
    from moto.sqs.models import Queue, SQSBackend

    if getattr(SQSBackend, "_serialized_by_chatvault", False):
        return

    def locked(name: str) -> None:
        original = getattr(SQSBackend, name)

        def call(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            with self.get_queue(queue_name)._messages_lock:
                return original(self, queue_name, *args, **kwargs)

        setattr(SQSBackend, name, call)

    receive_message = SQSBackend.receive_message

    def receive_in_order(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        with queue._messages_lock:
            for message in [m for m in queue.pending_messages if m.visible]:
                queue.pending_messages.discard(message)  # its visibility timeout passed: no longer in flight
            return receive_message(self, queue_name, *args, **kwargs)

    SQSBackend.receive_message = receive_in_order  # type: ignore[method-assign]
    for name in (
        "send_message",
        "send_message_batch",
        "delete_message",
        "delete_message_batch",
        "change_message_visibility",
        "change_message_visibility_batch",
        "purge_queue",
    ):
        locked(name)

    add_message = Queue.add_message

    def add_once(self: Any, message: Any) -> None:
        dedup = getattr(message, "deduplication_id", None)
        if self.fifo_queue and dedup:
            scope = message.group_id if getattr(self, "deduplication_scope", "") == "messageGroup" else ""
            seen: dict[tuple[str, str], float] = self.__dict__.setdefault("_sent_by_chatvault", {})
            now = time.monotonic()
            for key in [k for k, at in seen.items() if now - at >= DEDUPLICATION_SECONDS]:
                del seen[key]
            if (scope, dedup) in seen:
                return
            seen[(scope, dedup)] = now
        add_message(self, message)

    def wait_for_messages(self: Any, timeout: int) -> None:
        with self._messages_lock:
            self._messages_lock.wait(timeout=timeout)

    Queue.add_message = add_once  # type: ignore[method-assign]
    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]
    SQSBackend._serialized_by_chatvault = True  # type: ignore[attr-defined]


def forget_used_shard_iterators() -> None:
    """moto keeps every shard iterator it ever handed out (one per GetRecords) for the server's life:
    a stream polled a few times a second grew by megabytes an hour. The local pollers (streams.py)
    read each iterator once and go on with the next one it returns, so a used one is dropped here."""
    from moto.dynamodbstreams.models import ShardIterator

    if getattr(ShardIterator, "_forgotten_by_chatvault", False):
        return
    get = ShardIterator.get

    def get_once(self: Any, limit: int = 1000) -> dict[str, Any]:
        page = get(self, limit)
        self.streams_backend.shard_iterators.pop(self.arn, None)
        return page

    ShardIterator.get = get_once  # type: ignore[method-assign]
    ShardIterator._forgotten_by_chatvault = True  # type: ignore[attr-defined]


POLL_HEADER = "X-Chatvault-Poll"  # on the local event sources' requests (poll_client)


def poll_client(service: str, endpoint: str) -> Any:
    """A client for an event source's polling (streams.py, subscriber.py): several requests a second,
    each of which would be a line of the emulator's access log. Its requests carry POLL_HEADER, and
    the emulator leaves those that succeed out of the log (quiet_polls); a failed one is still logged."""
    client = aws_client(service, endpoint)

    def mark(request: Any, **_: Any) -> None:
        request.headers[POLL_HEADER] = "1"

    client.meta.events.register("before-sign", mark)
    return client


def quiet_polls() -> None:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    if getattr(MotoRequestHandler, "_quieted_by_chatvault", False):
        return
    log_request = MotoRequestHandler.log_request

    def log_unless_a_poll(self: Any, code: int | str = "-", size: int | str = "-") -> None:
        if str(code) == "200" and self.headers.get(POLL_HEADER):
            return
        log_request(self, code, size)

    MotoRequestHandler.log_request = log_unless_a_poll  # type: ignore[method-assign]
    MotoRequestHandler._quieted_by_chatvault = True  # type: ignore[attr-defined]


def start_moto(port: int) -> Any:
    """A moto server in this process, on 127.0.0.1 only."""
    from moto.moto_server import werkzeug_app
    from moto.server import ThreadedMotoServer

    serialize_dynamodb()
    serialize_sqs()
    forget_used_shard_iterators()
    quiet_polls()
    # moto's server answers CORS with a wildcard for every origin by default: off, so the bucket's own
    # CorsConfiguration (the template's, from AllowedOrigins) decides what a browser may POST, as in S3.
    werkzeug_app.DISABLE_GLOBAL_CORS = True  # type: ignore[attr-defined]
    _cors_on_presigned_posts()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server
