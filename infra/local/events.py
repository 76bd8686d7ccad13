"""The template's EventBridgeRule events, run locally: the S3 ObjectCreated events of the uploads
bucket reach ConfirmUploadFunction as they do in AWS.

In AWS the bucket sends its events to EventBridge (NotificationConfiguration.EventBridgeConfiguration)
and each rule invokes its function asynchronously, retrying a failure. Here the emulator does the
first half itself: provision() turns the bucket's EventBridge notifications on in moto and creates
each rule there, with the template's own pattern, and a queue as its target (moto's EventBridge
delivers to queues, not to functions). So every object written to the emulator, by a presigned POST
straight from a browser, a boto3 PUT or a copy, is matched by moto and queued. start() polls each
queue and invokes the function with the event, as Lambda's asynchronous invocation would; a failed
invocation is retried after a pause, up to the rule's MaximumRetryAttempts, then dropped with a line
in the log."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from infra.local.emulator import aws_client
from infra.local.polling import poll_forever
from infra.local.runtime import FunctionError, Runtime
from infra.template import STACK, Stack

RETRY_PAUSE_S = 2
POLL_SECONDS = 5  # long polls: an event is delivered as it arrives, the log gets a line per poll
DEFAULT_RETRIES = 2  # Lambda's own for asynchronous invocations


@dataclass(frozen=True)
class Rule:
    function: str
    event: str
    pattern: dict[str, Any]
    retries: int

    @property
    def name(self) -> str:
        return f"{STACK}-{self.function}{self.event}"


def rules(stack: Stack) -> list[Rule]:
    found = []
    for fn in stack.functions().values():
        for name, event in fn.events.items():
            if event.get("Type") != "EventBridgeRule":
                continue
            props = event.get("Properties", {})
            retries = int(props.get("RetryPolicy", {}).get("MaximumRetryAttempts", DEFAULT_RETRIES))
            found.append(Rule(fn.name, name, props["Pattern"], retries))
    return found


def provision(stack: Stack, endpoint: str) -> dict[str, str]:
    """Each rule in the emulator's EventBridge, with a queue as its target. Returns rule -> queue URL."""
    events, sqs = aws_client("events", endpoint), aws_client("sqs", endpoint)
    queues: dict[str, str] = {}
    for rule in rules(stack):
        url = sqs.create_queue(QueueName=rule.name, Attributes={"VisibilityTimeout": str(RETRY_PAUSE_S)})[
            "QueueUrl"
        ]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=rule.name, EventPattern=json.dumps(rule.pattern), State="ENABLED")
        events.put_targets(Rule=rule.name, Targets=[{"Id": "function", "Arn": arn}])
        queues[rule.name] = url
    return queues


def deliver(rule: Rule, runtime: Runtime, sqs: Any, url: str) -> int:
    """One poll of the rule's queue: invoke the function with each event; returns how many arrived."""
    received = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=POLL_SECONDS,
        AttributeNames=["ApproximateReceiveCount"],
    ).get("Messages", [])
    for message in received:
        attempts = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            result = runtime.invoke(rule.function, json.loads(message["Body"]))
            print(f"[events] {rule.function}: {json.dumps(result)}", flush=True)
        except FunctionError as exc:
            if attempts <= rule.retries:
                print(f"[events] {rule.function} failed (attempt {attempts}), retried: {exc}", flush=True)
                continue  # the message comes back after its visibility timeout
            print(f"[events] {rule.function} failed {attempts} times; event dropped: {exc}", flush=True)
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(received)


def start(
    stack: Stack, runtime: Runtime, endpoint: str, queues: dict[str, str], stop: threading.Event
) -> list[threading.Thread]:
    threads = []
    for rule in rules(stack):
        sqs = aws_client("sqs", endpoint)
        threads.append(
            poll_forever(
                lambda rule=rule, sqs=sqs: deliver(rule, runtime, sqs, queues[rule.name]),
                stop,
                name=f"events-{rule.function}",
                failed=f"[events] polling {rule.name} failed",
            )
        )
        print(f"[dev] {rule.function} receives the events of rule {rule.name} ({rule.event})", flush=True)
    return threads
