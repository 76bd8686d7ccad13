"""The template's DynamoDB events, run locally: each function with a `DynamoDB` event gets its table's
stream (the emulator's) as Lambda's event source mapping gives it.

One thread per event polls the stream's shard (the emulator's tables have one), from the event's
StartingPosition (the template says TRIM_HORIZON: the table is created empty when `make dev` starts,
so that is every record, including any written before the poll began; LATEST would miss those),
every POLL_SECONDS when there is nothing new. Records the FilterCriteria does not pass are skipped
(filters.py: the subset the template uses, anything else raises at start). The rest go to the function
in order, up to BatchSize a batch, as Lambda's DynamoDB stream event.

What the function answers is honoured as Lambda does: `batchItemFailures` (ReportBatchItemFailures)
retries from the lowest reported sequence number, the records before it being done; a function error
retries the batch, halved first when BisectBatchOnFunctionError is set (a split is not a retry). After
MaximumRetryAttempts retries without progress, or once a record is older than
MaximumRecordAgeInSeconds, the batch is skipped and its place in the stream (no record, no item) is
sent to the OnFailure destination, in Lambda's own form; a line in the log says so."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.local import filters
from infra.local.emulator import aws_client, poll_client
from infra.local.polling import enabled_events, poll_forever
from infra.local.runtime import FunctionError, Runtime
from infra.template import ACCOUNT, REGION, Stack

POLL_SECONDS = 0.25  # a record reaches its function within a poll of being written
RETRY_PAUSE_S = 0.5  # between a failed batch and its retry
READ_LIMIT = 1000  # GetRecords' largest page
# What a DynamoDB event may say; another property raises at start rather than being ignored
KNOWN = {
    "Stream",
    "StartingPosition",
    "BatchSize",
    "MaximumBatchingWindowInSeconds",  # locally a batch goes as soon as its records are read
    "FilterCriteria",
    "FunctionResponseTypes",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "DestinationConfig",
    "Enabled",
}


@dataclass(frozen=True)
class StreamSource:
    function: str
    event: str
    table: str  # the table's physical name
    starting_position: str
    batch_size: int
    filters: list[filters.Pattern]
    report_failures: bool
    bisect: bool
    retries: int  # -1: until the record expires (Lambda's default)
    max_age: int  # seconds; -1: none
    on_failure: str | None  # a queue's ARN


def sources(stack: Stack) -> list[StreamSource]:
    found = []
    for fn, name, props in enabled_events(stack.functions(), "DynamoDB", KNOWN, "infra/local/streams.py"):
        destination = props.get("DestinationConfig", {}).get("OnFailure", {})
        if destination and destination.get("Type", "SQS") != "SQS":
            raise ValueError(f"{fn.name} {name}: only an SQS OnFailure destination runs locally")
        found.append(
            StreamSource(
                function=fn.name,
                event=name,
                table=str(props["Stream"]).split(":table/", 1)[1].split("/", 1)[0],
                starting_position=str(props.get("StartingPosition", "LATEST")),
                batch_size=int(props.get("BatchSize", 100)),
                filters=filters.patterns(props),
                report_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                bisect=bool(props.get("BisectBatchOnFunctionError", False)),
                retries=int(props.get("MaximumRetryAttempts", -1)),
                max_age=int(props.get("MaximumRecordAgeInSeconds", -1)),
                on_failure=destination.get("Destination"),
            )
        )
    return found


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A record of the emulator's GetRecords (boto3's form) as Lambda's event gives it."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", REGION),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def failure_record(
    source: StreamSource, batch: list[dict[str, Any]], shard: str, condition: str, invocations: int
) -> dict[str, Any]:
    """What Lambda sends the OnFailure destination of a stream: where the batch was, not its records."""
    first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{source.function}",
            "condition": condition,
            "approximateInvokeCount": invocations,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": _time(datetime.now(UTC).timestamp()),
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _time(first.get("ApproximateCreationDateTime", 0)),
            "approximateArrivalOfLastRecord": _time(last.get("ApproximateCreationDateTime", 0)),
            "batchSize": len(batch),
            "streamArn": batch[0]["eventSourceARN"],
        },
    }


def failed_from(result: Any, batch: list[dict[str, Any]]) -> int | None:
    """Where a retry starts (an index into the batch) after the function answered `result`: None when
    every record is done. An answer Lambda cannot read (an identifier not in the batch) fails all."""
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return None
    numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
    try:
        return min(numbers.index(str(failure["itemIdentifier"])) for failure in failures)
    except (KeyError, TypeError, ValueError):
        return 0


class Poller:
    """One event source mapping: the stream's records, batch by batch, to the function."""

    def __init__(self, source: StreamSource, runtime: Runtime, endpoint: str, stop: threading.Event) -> None:
        self.source, self.runtime, self.stop = source, runtime, stop
        self.streams = poll_client("dynamodbstreams", endpoint)
        self.sqs = aws_client("sqs", endpoint)
        table = aws_client("dynamodb", endpoint).describe_table(TableName=source.table)["Table"]
        self.stream_arn = str(table["LatestStreamArn"])
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        self.shard = str(shards[0]["ShardId"])  # the emulator's streams have one shard
        self.iterator = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=self.shard, ShardIteratorType=source.starting_position
        )["ShardIterator"]
        self.pending: list[dict[str, Any]] = []  # read, passed the filters, not yet done
        self.attempts = 0  # retries of the pending records' first without progress
        self.size = source.batch_size  # the next batch's size (halved by a bisection)

    def read(self) -> None:
        """The stream's new records that pass the filters, after those already pending."""
        page = self.streams.get_records(ShardIterator=self.iterator, Limit=READ_LIMIT)
        self.iterator = page.get("NextShardIterator") or self.iterator
        for record in page["Records"]:
            event = lambda_record(record, self.stream_arn)
            if filters.passes(self.source.filters, event):
                self.pending.append(event)

    def run(self) -> None:
        while not self.stop.is_set():
            pause = self.step()
            if pause:
                self.stop.wait(pause)

    def step(self) -> float:
        """Read what is new, deliver one batch: the pause before the next step (0: none)."""
        if len(self.pending) < self.source.batch_size:
            self.read()
        self._expire()
        batch = self.pending[: self.size]
        if not batch:
            return POLL_SECONDS
        errored = False
        try:
            result = self.runtime.invoke(self.source.function, {"Records": batch})
            done = failed_from(result, batch) if self.source.report_failures else None
            error = "" if done is None else f"batchItemFailures from record {done} of {len(batch)}"
        except FunctionError as exc:
            done, error, errored = 0, str(exc).splitlines()[0], True
        if done is None:  # every record done
            self.pending = self.pending[len(batch) :]
            self.attempts, self.size = 0, self.source.batch_size
            return 0
        if done > 0:  # the records before the first failure are done; the retry starts there
            self.pending = self.pending[done:]
            self.attempts = 0
            return 0
        if errored and self.source.bisect and len(batch) > 1:  # a split is not counted as a retry
            self.size = (len(batch) + 1) // 2
            print(f"[streams] {self.source.function} failed; its batch is halved: {error}", flush=True)
            return 0
        self.attempts += 1
        if 0 <= self.source.retries < self.attempts:
            self._give_up(batch, "RetryAttemptsExhausted", self.attempts)
            self.attempts, self.size = 0, self.source.batch_size
            return 0
        print(f"[streams] {self.source.function} failed (retry {self.attempts}): {error}", flush=True)
        return RETRY_PAUSE_S

    def _expire(self) -> None:
        """Records older than MaximumRecordAgeInSeconds are skipped, as Lambda does."""
        if self.source.max_age < 0:
            return
        oldest = datetime.now(UTC).timestamp() - self.source.max_age
        expired = [
            r for r in self.pending if r["dynamodb"].get("ApproximateCreationDateTime", oldest) < oldest
        ]
        if expired:
            self._give_up(expired, "RecordAgeExceeded", 0)

    def _give_up(self, batch: list[dict[str, Any]], condition: str, invocations: int) -> None:
        """Skip `batch` (the pending records' first ones), telling the OnFailure destination."""
        self.pending = self.pending[len(batch) :]
        where = f"records {batch[0]['dynamodb']['SequenceNumber']}..{batch[-1]['dynamodb']['SequenceNumber']}"
        if self.source.on_failure is None:
            print(f"[streams] {self.source.function}: {condition}, {where} skipped", flush=True)
            return
        queue = self.source.on_failure.rsplit(":", 1)[1]
        url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        record = failure_record(self.source, batch, self.shard, condition, invocations)
        self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
        print(f"[streams] {self.source.function}: {condition}, {where} sent to {queue}", flush=True)


def start(stack: Stack, runtime: Runtime, endpoint: str, stop: threading.Event) -> list[threading.Thread]:
    threads = []
    for source in sources(stack):
        poller = Poller(source, runtime, endpoint, stop)
        threads.append(
            poll_forever(
                poller.run,
                stop,
                name=f"streams-{source.function}",
                failed=f"[streams] polling for {source.function} failed",
            )
        )
        print(
            f"[dev] {source.function} receives the stream of {source.table} ({source.event}, "
            f"{source.starting_position}, up to {source.batch_size} records a batch)",
            flush=True,
        )
    return threads
