"""The local event sources (infra/local): Lambda's event filtering subset (filters.py), the DynamoDB
stream's delivery to its function (streams.py) and the bot's queue subscription (subscriber.py), and
what the emulator's SQS is made to do as SQS does (emulator.serialize_sqs). Against a moto server on
loopback, as `make dev` runs them."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.local import filters, streams, subscriber
from infra.local.emulator import provision, start_moto
from infra.local.runtime import FunctionError
from infra.template import ROOT, Stack
from tests.integration.local_stack import free_port

STACK = Stack.from_template()
TABLE = "chatvault-local-SessionsTable"


# -- filters ---------------------------------------------------------------------------------------


def _stream_source(function: str) -> streams.StreamSource:
    (source,) = [s for s in streams.sources(STACK) if s.function == function]
    return source


def test_the_templates_patterns_are_run_as_lambda_reads_them() -> None:
    assert sorted(s.function for s in streams.sources(STACK)) == [
        "PublishMessageEventsFunction",
        "RemoveExpiredFilesFunction",
    ]
    source = _stream_source("PublishMessageEventsFunction")
    record = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "s"}, "sk": {"S": "M#0001"}}}}
    assert filters.passes(source.filters, record)
    assert not filters.passes(source.filters, {**record, "eventName": "MODIFY"})
    assert not filters.passes(source.filters, {**record, "dynamodb": {"Keys": {"sk": {"S": "S"}}}})
    assert not filters.passes(source.filters, {"eventName": "INSERT"})  # a field missing: no match

    expired = _stream_source("RemoveExpiredFilesFunction")
    by_ttl = {
        "eventName": "REMOVE",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {"Keys": {"pk": {"S": "s"}, "sk": {"S": "U#u"}}},
    }
    assert filters.passes(expired.filters, by_ttl)
    assert not filters.passes(expired.filters, {k: v for k, v in by_ttl.items() if k != "userIdentity"})
    assert not filters.passes(expired.filters, record)

    bot = subscriber.bot_template("echo")
    (queue,) = subscriber.sources(
        subscriber.bot_functions(subscriber.bot_stack(bot, STACK, "http://api"), bot)
    )
    user = {"body": json.dumps({"role": "user", "message_id": "m"})}
    assert filters.passes(queue.filters, filters.sqs_view(user))
    assert not filters.passes(queue.filters, filters.sqs_view({"body": json.dumps({"role": "assistant"})}))
    assert not filters.passes(queue.filters, filters.sqs_view({"body": "role user"}))  # not JSON


@pytest.mark.parametrize(
    ("rule", "value", "passes"),
    [
        (["a", "b"], "b", True),
        (["a"], "A", False),
        ([1], 1.0, True),
        (["1"], 1, False),
        ([True], 1, False),
        ([None], None, True),
        ([{"prefix": "M#"}], "M#1", True),
        ([{"prefix": "M#"}], 7, False),
    ],
)
def test_a_rule_matches_exact_values_and_prefixes(rule: list[Any], value: Any, passes: bool) -> None:
    assert filters.matches({"field": rule}, {"field": value}) is passes


@pytest.mark.parametrize(
    "pattern",
    [
        {"field": [{"anything-but": "x"}]},
        {"field": [{"numeric": [">", 1]}]},
        {"field": [{"exists": True}]},
        {"field": [{"suffix": "x"}]},
        {"field": [{"prefix": "x", "suffix": "y"}]},
        {"$or": [{"a": ["b"]}]},
        {"field": "x"},
        {"field": [["x"]]},
    ],
)
def test_a_rule_not_run_locally_is_refused_when_the_template_is_read(pattern: dict[str, Any]) -> None:
    with pytest.raises(filters.UnsupportedFilter):
        filters.patterns({"FilterCriteria": {"Filters": [{"Pattern": json.dumps(pattern)}]}})


def test_the_bots_template_is_filled_from_the_stacks_outputs() -> None:
    template = subscriber.bot_template("echo")
    stack = subscriber.bot_stack(template, STACK, "http://127.0.0.1:3000")
    assert stack.parameters["ChatVaultApiUrl"] == "http://127.0.0.1:3000"
    assert stack.parameters["MessageEventsQueueArn"].endswith(":chatvault-local-MessageEventsQueue.fifo")
    (fn,) = subscriber.bot_functions(stack, template).values()
    assert fn.code_dir == ROOT / "examples/echo_bot"
    assert fn.environment["CHATVAULT_API_URL"] == "http://127.0.0.1:3000"
    assert fn.timeout <= 60  # the events queue's visibility timeout
    (source,) = subscriber.sources({fn.name: fn})
    # one event an invocation: a failure must not count receives against the session's later messages
    assert (source.queue_name, source.batch_size, source.report_failures) == (
        "chatvault-local-MessageEventsQueue.fifo",
        1,
        True,
    )


# -- against a moto server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    server = start_moto(port)
    url = f"http://127.0.0.1:{port}"
    provision(STACK, url)
    yield url
    server.stop()


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def _queue(endpoint: str, name: str) -> str:
    return str(_client("sqs", endpoint).get_queue_url(QueueName=f"chatvault-local-{name}")["QueueUrl"])


class Stub:
    """The local runtime's invoke, answered by `answer` (which may raise FunctionError)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.events: list[dict[str, Any]] = []

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return self.answer(event)


def _poller(endpoint: str, runtime: Stub) -> streams.Poller:
    """The publisher's stream source, from LATEST: what the tests before wrote is not this test's."""
    source = _stream_source("PublishMessageEventsFunction")
    latest = dataclasses.replace(source, starting_position="LATEST")
    return streams.Poller(latest, runtime, endpoint, threading.Event())  # type: ignore[arg-type]


def _write(endpoint: str, session: str, *sort_keys: str) -> None:
    for sk in sort_keys:
        _client("dynamodb", endpoint).put_item(TableName=TABLE, Item={"pk": {"S": session}, "sk": {"S": sk}})


def _keys(event: dict[str, Any]) -> list[str]:
    return [r["dynamodb"]["Keys"]["sk"]["S"] for r in event["Records"]]


def test_new_messages_reach_the_function_as_lambdas_stream_event(endpoint: str) -> None:
    runtime = Stub(lambda _: {"batchItemFailures": []})
    poller = _poller(endpoint, runtime)
    _write(endpoint, "s1", "S", "M#0001", "M#0002")
    poller.step()
    (event,) = runtime.events
    assert _keys(event) == ["M#0001", "M#0002"]  # the session item is filtered out
    record = event["Records"][0]
    assert set(record) == {
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    }
    assert (record["eventName"], record["eventVersion"], record["eventSource"]) == (
        "INSERT",
        "1.1",
        "aws:dynamodb",
    )
    assert record["eventSourceARN"].startswith(
        f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/"
    )
    assert record["dynamodb"]["StreamViewType"] == "KEYS_ONLY"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    json.dumps(event)  # what a worker process is sent
    assert poller.step() == streams.POLL_SECONDS
    assert len(runtime.events) == 1


def test_a_reported_failure_is_retried_from_its_record_on(endpoint: str) -> None:
    failed_once: list[str] = []

    def fail_the_second_once(event: dict[str, Any]) -> dict[str, Any]:
        second = event["Records"][1:2]
        if second and not failed_once:
            failed_once.append(second[0]["dynamodb"]["SequenceNumber"])
            return {"batchItemFailures": [{"itemIdentifier": failed_once[0]}]}
        return {"batchItemFailures": []}

    runtime = Stub(fail_the_second_once)
    poller = _poller(endpoint, runtime)
    _write(endpoint, "s2", "M#0001", "M#0002", "M#0003")
    poller.step()
    poller.step()
    assert [_keys(e) for e in runtime.events] == [["M#0001", "M#0002", "M#0003"], ["M#0002", "M#0003"]]
    assert runtime.events[1]["Records"][0]["dynamodb"]["SequenceNumber"] == failed_once[0]


def test_a_failing_batch_is_halved_retried_10_times_then_told_to_the_on_failure_queue(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_on_the_poison(event: dict[str, Any]) -> dict[str, Any]:
        if "M#0002" in _keys(event):
            raise FunctionError("poison")
        return {"batchItemFailures": []}

    runtime = Stub(fail_on_the_poison)
    poller = _poller(endpoint, runtime)
    sqs, unpublished = _client("sqs", endpoint), _queue(endpoint, "UnpublishedEventsQueue")
    sqs.purge_queue(QueueUrl=unpublished)
    _write(endpoint, "s3", "M#0001", "M#0002", "M#0003")
    for _ in range(30):
        poller.step()
        if len(_keys(runtime.events[-1])) == 1 and _keys(runtime.events[-1]) == ["M#0003"]:
            break
    alone = [e for e in runtime.events if _keys(e) == ["M#0002"]]
    assert len(alone) == 11  # the first try of the record alone, and 10 retries
    assert _keys(runtime.events[-1]) == ["M#0003"]  # the stream goes on after it
    assert _keys(runtime.events[0]) == ["M#0001", "M#0002", "M#0003"]

    (told,) = sqs.receive_message(QueueUrl=unpublished, MaxNumberOfMessages=10)["Messages"]
    record = json.loads(told["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 11
    info = record["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1
    assert (
        info["startSequenceNumber"]
        == info["endSequenceNumber"]
        == alone[0]["Records"][0]["dynamodb"]["SequenceNumber"]
    )
    assert "s3" not in told["Body"]  # where it was, never what


# -- the emulator's SQS, as SQS ---------------------------------------------------------------------


def _fifo(endpoint: str, name: str) -> str:
    return str(
        _client("sqs", endpoint).create_queue(
            QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "30"}
        )["QueueUrl"]
    )


def test_a_fifo_groups_first_message_comes_back_first(endpoint: str) -> None:
    """Two messages of a group in flight, both back in sight: the first is delivered first (moto gave
    the second, skipping the first as if its group were still in flight)."""
    sqs, url = _client("sqs", endpoint), _fifo(endpoint, "order")
    for n in (1, 2):
        sqs.send_message(
            QueueUrl=url, MessageBody=f"m{n}", MessageGroupId="g", MessageDeduplicationId=f"d{n}"
        )
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in first] == ["m1", "m2"]
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
    for message in first:  # back in sight once a second has passed (moto: at once when it is 0)
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=1
        )
    time.sleep(1.1)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    assert [m["Body"] for m in again] == ["m1"]


def test_a_fifo_deduplication_id_is_remembered_after_its_message_is_deleted(endpoint: str) -> None:
    sqs, url = _client("sqs", endpoint), _fifo(endpoint, "dedup")
    sqs.send_message(QueueUrl=url, MessageBody="once", MessageGroupId="g", MessageDeduplicationId="same")
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    sqs.send_message(QueueUrl=url, MessageBody="once", MessageGroupId="g", MessageDeduplicationId="same")
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_the_subscriber_deletes_what_is_filtered_out_or_answered_and_keeps_the_failures(
    endpoint: str,
) -> None:
    url = _queue(endpoint, "MessageEventsQueue.fifo")
    sqs = _client("sqs", endpoint)
    sqs.purge_queue(QueueUrl=url)
    bodies = [{"role": "assistant", "n": 0}, {"role": "user", "n": 1}, {"role": "user", "n": 2}]
    for body in bodies:
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(body),
            MessageGroupId="g",
            MessageDeduplicationId=str(body["n"]),
        )

    def fail_the_second(event: dict[str, Any]) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}

    runtime = Stub(fail_the_second)
    template = subscriber.bot_template("echo")
    (fn,) = subscriber.bot_functions(subscriber.bot_stack(template, STACK, "http://api"), template).values()
    (one,) = subscriber.sources({fn.name: fn})
    source = dataclasses.replace(one, batch_size=10)  # a bot that takes batches, as Lambda allows
    poller = subscriber.Subscriber(source, runtime, endpoint, threading.Event(), retry_seconds=0)  # type: ignore[arg-type]
    assert poller.deliver(poller.receive()) == (1, 1)
    (event,) = runtime.events
    assert [json.loads(r["body"])["n"] for r in event["Records"]] == [1, 2]  # the assistant's: deleted unseen
    record = event["Records"][0]
    assert (record["eventSource"], record["eventSourceARN"]) == ("aws:sqs", source.queue_arn)
    assert record["attributes"]["MessageGroupId"] == "g"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    (kept,) = poller.receive()  # back at once (retry_seconds=0), the only one left
    assert json.loads(kept["Body"])["n"] == 2
    assert kept["Attributes"]["ApproximateReceiveCount"] == "2"
