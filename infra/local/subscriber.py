"""`make dev BOT=echo`: a bot back end (examples/<BOT>_bot/template.yaml) runs beside the stack as the
message events' subscriber, as it would be deployed: its function in the local runtime, its template's
`SQS` events polled the way Lambda's SQS event source mapping polls.

The bot's template is read with the service's loader (template.py). Its parameters are filled from the
stack: ChatVaultApiUrl is the local API, every other one the service's output of that name
(MessageEventsQueueArn, ServiceWriterPolicyArn, EventSubscriberPolicyArn). Its function runs with the
local credentials (`testing`), which the gateway's SigV4 check accepts for the service writer's routes.

The polling, per SQS event:
- one receiver takes up to BatchSize messages (a short poll, then POLL_SECONDS of sleep when the queue
  had none) and hands the batch to one of CONCURRENCY invocations at a time. A FIFO queue never gives
  out a message group's later messages while one of its messages is in flight (SQS's rule, which the
  emulator keeps), so a session's events are answered in order and one at a time;
- messages the FilterCriteria does not pass (filters.py; the body matched as JSON) are deleted unseen,
  as Lambda deletes them;
- the function gets Lambda's SQS event; the messages it answered are deleted. With
  ReportBatchItemFailures those it lists in `batchItemFailures` stay (an answer naming no message of
  the batch fails the whole batch, Lambda's rule); a function error keeps the whole batch;
- a message kept comes back once its visibility timeout has passed (the queue's: 60 s for the events
  queue); after maxReceiveCount receives SQS moves it to the dead-letter queue (the emulator does).
  BOT_RETRY_SECONDS=<n> (local only, for tests and impatient debugging) makes a kept message visible
  again after n seconds instead: Lambda has no such setting, a deployed bot waits the queue's timeout."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local import filters
from infra.local.emulator import poll_client
from infra.local.polling import enabled_events, poll_forever
from infra.local.runtime import FunctionError, Runtime
from infra.template import REGION, ROOT, Function, Stack

POLL_SECONDS = 0.25  # an event reaches the bot within a poll of being sent
CONCURRENCY = 5  # batches being answered at once (Lambda's SQS poller starts with 5)
RECEIVE_LIMIT = 10  # ReceiveMessage's largest batch
KNOWN = {
    "Queue",
    "BatchSize",
    "FilterCriteria",
    "FunctionResponseTypes",
    "MaximumBatchingWindowInSeconds",
    "Enabled",
}


def bot_template(name: str) -> Path:
    """BOT=echo is examples/echo_bot/template.yaml."""
    return ROOT / "examples" / f"{name}_bot" / "template.yaml"


def bot_stack(template: Path, service: Stack, api: str) -> Stack:
    """The bot's template with its parameters filled from the service's stack."""
    raw = Stack.from_template({}, path=template).template
    outputs = service.template.get("Outputs", {})
    parameters: dict[str, str] = {}
    for name, spec in raw.get("Parameters", {}).items():
        if name == "ChatVaultApiUrl":
            parameters[name] = api
        elif name in outputs:
            parameters[name] = str(service.resolve(outputs[name]["Value"]))
        elif "Default" not in spec:
            raise ValueError(
                f"{template}: parameter {name} is neither ChatVaultApiUrl nor an output of the stack"
            )
    return Stack.from_template(parameters, path=template)


def bot_functions(stack: Stack, template: Path) -> dict[str, Function]:
    """The bot's functions, their CodeUri read from the bot template's own directory (as sam does)."""
    functions = stack.functions()
    resources = stack.template["Resources"]
    return {
        name: dataclasses.replace(
            fn, code_dir=(template.parent / resources[name]["Properties"]["CodeUri"]).resolve()
        )
        for name, fn in functions.items()
    }


@dataclass(frozen=True)
class QueueSource:
    function: str
    event: str
    queue_arn: str
    batch_size: int
    filters: list[filters.Pattern]
    report_failures: bool

    @property
    def queue_name(self) -> str:
        return self.queue_arn.rsplit(":", 1)[1]


def sources(functions: dict[str, Function]) -> list[QueueSource]:
    found = []
    for fn, name, props in enabled_events(functions, "SQS", KNOWN, "infra/local/subscriber.py"):
        found.append(
            QueueSource(
                function=fn.name,
                event=name,
                queue_arn=str(props["Queue"]),
                batch_size=int(props.get("BatchSize", 10)),
                filters=filters.patterns(props),
                report_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            )
        )
    return found


def lambda_record(message: dict[str, Any], source: QueueSource) -> dict[str, Any]:
    """A received message (boto3's form) as Lambda's SQS event gives it."""
    attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value["DataType"],
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": source.queue_arn,
        "awsRegion": REGION,
    }


def failed_ids(result: Any, records: list[dict[str, Any]]) -> set[str]:
    """The messages to keep after the function answered `result` (ReportBatchItemFailures)."""
    ids = {r["messageId"] for r in records}
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return set()
    try:
        named = {str(failure["itemIdentifier"]) for failure in failures}
    except (KeyError, TypeError):
        return ids
    return named if named <= ids else ids  # an identifier not in the batch: all of it failed


class Subscriber:
    """One SQS event of the bot's function: the queue's messages, batch by batch, to the function."""

    def __init__(
        self,
        source: QueueSource,
        runtime: Runtime,
        endpoint: str,
        stop: threading.Event,
        retry_seconds: int | None = None,
    ) -> None:
        self.source, self.runtime, self.stop, self.retry_seconds = source, runtime, stop, retry_seconds
        self.sqs = poll_client("sqs", endpoint)
        self.url = self.sqs.get_queue_url(QueueName=source.queue_name)["QueueUrl"]
        found = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["RedrivePolicy"])
        redrive = json.loads(found.get("Attributes", {}).get("RedrivePolicy") or "{}")
        self.max_receives = int(redrive["maxReceiveCount"]) if redrive else None
        self.slots = threading.BoundedSemaphore(CONCURRENCY)

    def receive(self) -> list[dict[str, Any]]:
        """Up to BatchSize messages, as they are there now (short polls)."""
        messages: list[dict[str, Any]] = []
        while len(messages) < self.source.batch_size:
            got = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=min(RECEIVE_LIMIT, self.source.batch_size - len(messages)),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages += got
            if len(got) < RECEIVE_LIMIT:
                break
        return messages

    def deliver(self, messages: list[dict[str, Any]]) -> tuple[int, int]:
        """Filter, invoke, delete what was answered: (answered, kept for a retry)."""
        records = [lambda_record(m, self.source) for m in messages]
        passed = [r for r in records if filters.passes(self.source.filters, filters.sqs_view(r))]
        self._delete([r for r in records if r not in passed])
        if not passed:
            return 0, 0
        try:
            result = self.runtime.invoke(self.source.function, {"Records": passed})
            kept = failed_ids(result, passed) if self.source.report_failures else set()
            error = f"batchItemFailures {len(kept)} of {len(passed)}" if kept else ""
        except FunctionError as exc:
            kept, error = {r["messageId"] for r in passed}, str(exc).splitlines()[0]
        self._delete([r for r in passed if r["messageId"] not in kept])
        for record in (r for r in passed if r["messageId"] in kept):
            received = int(record["attributes"].get("ApproximateReceiveCount", "1"))
            last = self.max_receives is not None and received >= self.max_receives
            then = "it goes to the dead-letter queue" if last else "retried"
            print(
                f"[bot] {self.source.function} failed event {record['messageId']} (receive {received}): "
                f"{then}: {error}",
                flush=True,
            )
            if self.retry_seconds is not None:
                self.sqs.change_message_visibility(
                    QueueUrl=self.url,
                    ReceiptHandle=record["receiptHandle"],
                    VisibilityTimeout=self.retry_seconds,
                )
        return len(passed) - len(kept), len(kept)

    def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), RECEIVE_LIMIT):
            chunk = records[start : start + RECEIVE_LIMIT]
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.slots.acquire(timeout=POLL_SECONDS):
                continue
            try:
                messages = self.receive()
            except BaseException:
                self.slots.release()
                raise
            if not messages:
                self.slots.release()
                self.stop.wait(POLL_SECONDS)
                continue
            threading.Thread(target=self._answer, args=(messages,), daemon=True).start()

    def _answer(self, messages: list[dict[str, Any]]) -> None:
        try:
            answered, _ = self.deliver(messages)
            if answered:
                print(f"[bot] {self.source.function} answered {answered} event(s)", flush=True)
        except Exception as exc:  # the emulator stopping under us, at shutdown
            if not self.stop.is_set():
                print(f"[bot] delivering to {self.source.function} failed: {exc}", flush=True)
        finally:
            self.slots.release()


def start(name: str, service: Stack, api: str, endpoint: str, stop: threading.Event) -> Runtime:
    """The bot `name` subscribed to the stack's events; returns its runtime (to close at the end)."""
    template = bot_template(name)
    if not template.exists():
        known = sorted(
            p.parent.name.removesuffix("_bot") for p in (ROOT / "examples").glob("*_bot/template.yaml")
        )
        raise SystemExit(
            f"make dev: no bot {name!r} (examples/{name}_bot/template.yaml); BOT= one of {known}"
        )
    functions = bot_functions(bot_stack(template, service, api), template)
    runtime = Runtime(functions, [], endpoint)
    retry = os.environ.get("BOT_RETRY_SECONDS")
    for source in sources(functions):
        subscriber = Subscriber(source, runtime, endpoint, stop, int(retry) if retry else None)
        poll_forever(
            subscriber.run,
            stop,
            name=f"bot-{source.function}",
            failed=f"[bot] polling {source.queue_name} failed",
        )
        rule = f", filter {json.dumps(source.filters)}" if source.filters else ""
        print(
            f"[dev] The {name} bot ({template.relative_to(ROOT)}) answers the message events: "
            f"{source.function} receives {source.queue_name} ({source.event}, up to {source.batch_size} "
            f"a batch{rule})",
            flush=True,
        )
    return runtime
