"""`make bench`: speed and cost of the service, measured side by side in one run against moto.

Writes tests/benchmarks/report.json and report.md. Every figure is the median of repeated runs with
its spread (min..max). AWS round trips and request bytes are counted with botocore `before-send`
hooks on every client the service uses; LangChain's DynamoDBChatMessageHistory runs in its own venv
against the same moto server and is counted the same way.

    python -m tests.benchmarks.run [--quick]     # --quick: small sizes, for the smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
EVENTS = ROOT / "tests/events"
CONTENT_CHARS = 500


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "runs": len(values),
    }


# ---------------------------------------------------------------------------------------------------
# the environment: a moto server holding the template's tables and bucket, the service pointed at it


def start_backend() -> tuple[Any, str]:
    from infra.local.emulator import provision, start_moto
    from infra.template import Stack
    from tests.integration.local_stack import free_port

    port = free_port()
    server = start_moto(port)
    _stream_as_on_aws()
    endpoint = f"http://127.0.0.1:{port}"
    stack = Stack.from_template()
    provision(stack, endpoint)
    functions = stack.functions()
    env = functions["CreateSessionFunction"].environment
    os.environ.update(
        {
            **env,
            # the bot's FIFO queue (provisioned above), for the publisher (section "message_events")
            "EVENTS_QUEUE_URL": functions["PublishMessageEventsFunction"].environment["EVENTS_QUEUE_URL"],
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "CREATE_LIMIT_PER_MINUTE": "1000000",
            "UPLOAD_LIMIT_PER_MINUTE": "1000000",
            "APPEND_LIMIT_PER_MINUTE": "60000",
        }
    )
    return server, endpoint


def _stream_as_on_aws() -> None:
    """The sessions table's stream (KEYS_ONLY, as deployed) costs its writes nothing on DynamoDB; on
    moto it would cost every transaction more and more. moto backs a table up before each transaction
    (copy.deepcopy, to roll a failed one back), stream included: after 40,000 stream records a
    transaction takes moto 1.5 to 3.4 s on this machine instead of about 3 ms. A stream record never
    changes once written, so the backup here shares the records and copies only their list (a failed
    transaction still rolls its records back); trim_streams() drops them between sections, as
    DynamoDB trims them after 24 hours."""
    import copy

    from moto.dynamodb.models.table import StreamShard

    def backup(shard: StreamShard, memo: dict[int, Any]) -> StreamShard:
        twin = copy.copy(shard)
        memo[id(shard)] = twin
        twin.table = memo.get(id(shard.table), shard.table)  # the table's backup, being made
        twin.items = list(shard.items)
        return twin

    StreamShard.__deepcopy__ = backup  # type: ignore[attr-defined]


def trim_streams() -> None:
    """Drop the records in the tables' streams (moto keeps them all; DynamoDB, 24 hours)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    for table in dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables.values():
        shard = table.stream_shard
        if shard is not None and shard.items:
            shard.starting_sequence_number += len(shard.items)  # later records keep counting on
            shard.items.clear()


@dataclass
class Seen:
    """One AWS request: its operation, request bytes and body, when it was sent and answered, the
    parsed answer (for the capacity units it consumed), and its service (dynamodb, s3, sqs)."""

    operation: str
    sent_bytes: int
    body: bytes
    started: float
    ended: float = 0.0
    answer: dict[str, Any] | None = None
    service: str = ""


class Calls:
    """AWS requests seen by botocore hooks (`before-send` when sent, `needs-retry` when answered)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._hooked: set[int] = set()
        self._current = threading.local()

    def hook(self, client: Any) -> None:
        if id(client) in self._hooked:
            return
        self._hooked.add(id(client))
        client.meta.events.register("before-send", self._sent)
        client.meta.events.register("needs-retry", self._answered)

    def unhook(self, client: Any) -> None:
        if id(client) in self._hooked:
            self._hooked.discard(id(client))
            client.meta.events.unregister("before-send", self._sent)
            client.meta.events.unregister("needs-retry", self._answered)

    def _sent(self, request: Any, event_name: str, **_: Any) -> None:
        body = request.body or b""
        if not isinstance(body, bytes | str):  # a stream (S3 uploads): its declared length
            body = b"\0" * int(request.headers.get("Content-Length", 0))
        raw = body if isinstance(body, bytes) else body.encode()
        _, service, operation = event_name.split(".", 2)  # before-send.<service>.<operation>
        self._current.seen = Seen(operation, len(raw), raw, time.perf_counter(), service=service)

    def _answered(self, response: Any = None, **_: Any) -> None:
        seen: Seen | None = getattr(self._current, "seen", None)
        if seen is None:
            return
        seen.ended = time.perf_counter()
        seen.answer = response[1] if isinstance(response, tuple) and isinstance(response[1], dict) else None
        self._current.seen = None
        self.seen.append(seen)

    def hook_all(self) -> None:
        from chatvault.dal.audit import AuditItem
        from chatvault.dal.aws import connection
        from chatvault.dal.aws.clients import client
        from chatvault.dal.aws.items import ChatItem, ErasingMark, StoredKey
        from chatvault.dal.lease import LeaseItem
        from chatvault.dal.limits import LimitItem

        for model in (ChatItem, StoredKey, ErasingMark, AuditItem, LimitItem, LeaseItem):
            self.hook(connection.of(model).client)
        for service in ("dynamodb", "s3", "sqs"):
            self.hook(client(service))

    @contextmanager
    def measure(self) -> Iterator[list[Seen]]:
        self.hook_all()
        start = len(self.seen)
        window: list[Seen] = []
        yield window
        window.extend(self.seen[start:])


def round_trips(window: list[Seen]) -> int:
    """Waves of requests: a request sent while another was still unanswered shares its round trip."""
    waves, busy_until = 0, float("-inf")
    for seen in sorted(window, key=lambda s: s.started):
        if seen.started >= busy_until:
            waves += 1
            busy_until = seen.ended
        else:
            busy_until = max(busy_until, seen.ended)
    return waves


def sent_bytes(window: list[Seen]) -> int:
    return sum(s.sent_bytes for s in window)


def waiting(window: list[Seen]) -> float:
    """Seconds during which at least one of the window's requests was unanswered."""
    total, busy_from, busy_until = 0.0, 0.0, float("-inf")
    for seen in sorted(window, key=lambda s: s.started):
        if seen.started > busy_until:
            total += max(0.0, busy_until - busy_from)
            busy_from, busy_until = seen.started, seen.ended
        else:
            busy_until = max(busy_until, seen.ended)
    return total + max(0.0, busy_until - busy_from)


def operations(window: list[Seen]) -> list[str]:
    return [s.operation for s in window]


@lru_cache(maxsize=1)
def _reader() -> Any:
    """A client the Calls hooks do not see, to size stored items."""
    return _reader_of("dynamodb")


@lru_cache
def _reader_of(service: str) -> Any:
    """A client of `service` the Calls hooks do not see (the benchmark's own requests)."""
    import boto3

    return boto3.client(service)


def _stored(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        _reader().get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    )
    return item


def capacity(window: list[Seen]) -> tuple[float, float]:
    """(read units, write units) the window's DynamoDB requests consume (tests/benchmarks/capacity.py)."""
    from tests.benchmarks.capacity import units

    reads = writes = 0.0
    for seen in window:
        read, write = (
            units(seen.operation, seen.body, seen.answer, _stored) if seen.body[:1] == b"{" else (0, 0)
        )
        reads, writes = reads + read, writes + write
    return reads, writes


@lru_cache(maxsize=1)
def _timeouts() -> dict[str, int]:
    from infra.template import Stack

    return {fn.code_dir.name: fn.timeout for fn in Stack.from_template().functions().values()}


def invoke(function: str, event: dict[str, Any], budget_s: float | None = None) -> dict[str, Any]:
    """One invocation, with the remaining time the function's template Timeout gives it (or
    `budget_s`, to measure on moto what would not fit the function's time there)."""
    from importlib import import_module

    from chatvault.core import deadline
    from infra.local.runtime import LambdaContext

    context = LambdaContext(
        function,
        512,
        f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
        str(uuid.uuid4()),
        time.monotonic() + (budget_s or _timeouts()[function]),
    )
    module = import_module(f"functions.{function}.app")
    try:
        result: dict[str, Any] = module.lambda_handler(event, context)
    finally:
        deadline.start(None)  # the invocation is over; direct calls below run without its deadline
    return result


def api_event(
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    query: str = "",
    subject: str | None = None,
) -> dict[str, Any]:
    from infra.local.gateway import Gateway, match_route
    from tests.helpers import ROUTES

    found = match_route(ROUTES, method, path)
    assert found is not None
    route, params = found
    headers = {"content-type": "application/json", **({"x-session-token": token} if token else {})}
    data = json.dumps(body).encode() if body is not None else b""
    claims = {"sub": subject} if subject else None
    return Gateway.event(method, path, query, headers, data, route, params, claims)


def call(
    function: str, method: str, path: str, budget_s: float | None = None, **kwargs: Any
) -> tuple[int, Any]:
    result = invoke(function, api_event(method, path, **kwargs), budget_s)
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else None


def append_one(
    session_id: str, token: str | None, *, subject: str | None = None, with_id: bool = True
) -> Any:
    """One append of the benchmark's standard message (CONTENT_CHARS characters; with a message_id
    unless `with_id` is False) through the handler, which must store it: its body."""
    message = {"role": "user", "content": "x" * CONTENT_CHARS}
    if with_id:
        message["message_id"] = str(uuid.uuid4())
    path = f"/api/v1/sessions/{session_id}/messages"
    status, body = call("append_message", "POST", path, token=token, subject=subject, body=message)
    assert status == 201, body
    return body


def new_session() -> tuple[str, str]:
    status, body = call("create_session", "POST", "/api/v1/sessions", body={})
    assert status == 201, body
    return body["session_id"], body["session_token"]


def seed_history(session_id: str, count: int, content: str = "x" * CONTENT_CHARS) -> None:
    """A history of `count` messages of `content` (CONTENT_CHARS by default), written as the append
    writes them (items and session counters), without paying for `count` appends: sealed under the
    session's key, or plaintext in a session without one (legacy)."""
    from chatvault.core import clock
    from chatvault.dal import conversation_keys
    from chatvault.dal.aws.items import MessageItem, SessionItem, seal_message
    from chatvault.dal.aws.keys import MESSAGE_PREFIX, SESSION_SK
    from chatvault.dal.messages import position_of

    start = clock.now()
    key = conversation_keys.read(session_id, start)

    def body(sort_key: str) -> dict[str, Any]:
        if key is None:
            return {"content": content}
        return {"sealed": seal_message(key, session_id, sort_key, content, {})}

    first = int(position_of(start)) - count * 1000
    last = ""
    with MessageItem.batch_write() as batch:
        for i in range(count):
            last = f"{first + i * 1000:020d}"
            batch.save(
                MessageItem(
                    session_id,
                    MESSAGE_PREFIX + last,
                    message_id=str(uuid.uuid4()),
                    role="user",
                    created_at=start,
                    expires_at=start.replace(year=start.year + 1),
                    **body(MESSAGE_PREFIX + last),
                )
            )
    SessionItem(session_id, SESSION_SK).update(
        actions=[SessionItem.message_count.set(count), SessionItem.last_position.set(last)]
    )


# ---------------------------------------------------------------------------------------------------
# 1. cold start


# The libraries every HTTP handler stands on, imported as the handlers import them: the floor under
# any handler import built on the prescribed stack.
STACK_IMPORTS = {
    "botocore + PynamoDB": "import pynamodb.models, pynamodb.transactions",
    "+ pydantic": "import pynamodb.models, pynamodb.transactions; from pydantic import BaseModel, Field",
    "+ Powertools logger, metrics, event handler": (
        "import pynamodb.models, pynamodb.transactions; from pydantic import BaseModel, Field; "
        "from aws_lambda_powertools import Logger, Metrics; "
        "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver"
    ),
}

_COLD_SCRIPT = """\
import json, time
started = time.perf_counter()
import app
imported = time.perf_counter()
if {snapshot}:  # as under SnapStart: the hooks Lambda runs before it takes the snapshot
    from snapshot_restore_py import get_before_snapshot
    for hook, args, kwargs in reversed(get_before_snapshot()):
        hook(*args, **kwargs)
hooked = time.perf_counter()
class Context:
    function_name = {name!r}; memory_limit_in_mb = 512; aws_request_id = 'bench'
    invoked_function_arn = 'arn:aws:lambda:us-east-1:123456789012:function:{name}'
    deadline = time.monotonic() + 300
    def get_remaining_time_in_millis(self):
        return int((self.deadline - time.monotonic()) * 1000)
event = json.load(open({event!r}))
invoked = time.perf_counter()
app.lambda_handler(event, Context())
done = time.perf_counter()
# VmHWM: this process's peak RSS (ru_maxrss would include the parent's, inherited at fork)
rss_kb = int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))
print(json.dumps({{"import": imported - started, "hooks": hooked - imported, "first": done - invoked,
                  "rss_kb": rss_kb}}))
"""


def _fresh_process(script: str, cwd: Path, env: dict[str, str], flags: list[str] | None = None) -> str:
    out = subprocess.run(
        [sys.executable, *(flags or []), "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"a cold process failed in {cwd}:\n{out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def _import_seconds(code: str, cwd: Path, env: dict[str, str]) -> float:
    script = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    return float(_fresh_process(script, cwd, env))


def cold_start(runs: int, endpoint: str) -> dict[str, Any]:
    """Each run starts one fresh process per handler (import, then one invocation against moto) and
    one for `import boto3` and each stack layer, interleaved so that machine noise hits all alike."""
    from infra.template import Stack

    functions = Stack.from_template().functions()
    base_env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT / "layers/common"),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "0",
    }
    aws_env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    boto3_s: list[float] = []
    stack_s: dict[str, list[float]] = {name: [] for name in STACK_IMPORTS}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in functions}
    snapshotted: dict[str, list[dict[str, float]]] = {name: [] for name in functions}
    traced_s: list[float] = []
    for _ in range(runs):
        boto3_s.append(_import_seconds("import boto3", ROOT, base_env))
        for layer, code in STACK_IMPORTS.items():
            stack_s[layer].append(_import_seconds(code, ROOT, base_env))
        for name, fn in sorted(functions.items()):
            env = {**base_env, **fn.environment, **aws_env}
            for snapshot, rows in ((False, samples), (True, snapshotted)):
                event = str(EVENTS / f"{fn.code_dir.name}.json")
                script = _COLD_SCRIPT.format(name=name, event=event, snapshot=snapshot)
                rows[name].append(json.loads(_fresh_process(script, fn.code_dir, env)))
        get_session = functions["GetSessionFunction"]
        traced_env = {**base_env, **get_session.environment, "POWERTOOLS_TRACE_DISABLED": "false"}
        traced_s.append(_import_seconds("import app", get_session.code_dir, traced_env))

    boto3_median = statistics.median(boto3_s)

    def ms(values: list[float]) -> dict[str, float]:
        return spread([v * 1000 for v in values])

    return {
        "import_boto3_ms": ms(boto3_s),
        "stack": {
            layer: {
                "import_ms": ms(values),
                "ratio_to_boto3": round(statistics.median(values) / boto3_median, 2),
            }
            for layer, values in stack_s.items()
        },
        "handlers": {
            name: {
                "import_ms": ms([r["import"] for r in rows]),
                "ratio_to_boto3": round(statistics.median(r["import"] for r in rows) / boto3_median, 2),
                "first_invocation_ms": ms([r["first"] for r in rows]),
                "peak_rss_mb": spread([r["rss_kb"] / 1024 for r in rows]),
            }
            for name, rows in samples.items()
        },
        "snapstart": {
            name: {
                "memory_mb": functions[name].memory,
                "init_in_snapshot_ms": ms([r["import"] + r["hooks"] for r in rows]),
                "first_invocation_after_restore_ms": ms([r["first"] for r in rows]),
            }
            for name, rows in snapshotted.items()
        },
        "get_session_with_tracing_ms": ms(traced_s),
        "layer_bytecode": layer_bytecode(runs, functions["GetSessionFunction"], base_env),
    }


def layer_bytecode(runs: int, function: Any, base_env: dict[str, str]) -> dict[str, Any]:
    """GetSessionFunction's imports from a layer laid out as Lambda's /opt/python, built twice:
    as SAM's python3.13 build method builds it (wheels unzipped, no bytecode: Lambda cannot write
    any to /opt, so each cold start compiles), then compiled as layers/common/Makefile does."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        layer = Path(tmp) / "python"
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        requirements = ROOT / "layers/common/requirements.txt"
        subprocess.run([*pip, "--no-compile", "--target", str(layer), "-r", str(requirements)], check=True)
        shutil.copytree(ROOT / "layers/common/chatvault", layer / "chatvault")
        code = (
            f"import sys; sys.path[:0] = [{str(function.code_dir)!r}, {str(layer)!r}]; "
            "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"
        )
        env = {**base_env, **function.environment}

        def imports() -> list[float]:  # isolated, as in Lambda: only the function and the layer
            return [
                float(_fresh_process(code, function.code_dir, env, ["-I", "-S", "-B"])) * 1000
                for _ in range(runs)
            ]

        without = imports()
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(layer)],
            check=True,
        )
        with_bytecode = imports()
    return {"without_bytecode_ms": spread(without), "with_bytecode_ms": spread(with_bytecode)}


# ---------------------------------------------------------------------------------------------------
# 2. per operation


def per_operation(calls: Calls, runs: int) -> dict[str, Any]:
    samples: dict[str, list[tuple[int, int, str]]] = {}

    def record(name: str, function: str, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        with calls.measure() as window:
            status, body = call(function, method, path, **kwargs)
        assert status == expect, (name, status, body)
        # units right away: an update is sized by the item it left, before a later request changes it
        samples.setdefault(name, []).append((window, capacity(window)))
        return body

    for _ in range(runs):
        session = record("create", "create_session", "POST", "/api/v1/sessions", 201, body={"title": "bench"})
        token = session["session_token"]
        base = f"/api/v1/sessions/{session['session_id']}"
        record("get", "get_session", "GET", base, 200, token=token)
        record("patch", "update_session", "PATCH", base, 200, token=token, body={"title": "renamed"})
        for _ in range(3):
            body = {"role": "user", "content": "x" * CONTENT_CHARS, "message_id": str(uuid.uuid4())}
            record("append", "append_message", "POST", f"{base}/messages", 201, token=token, body=body)
        messages = f"{base}/messages"
        record("list first page (asc)", "list_messages", "GET", messages, 200, token=token, query="limit=2")
        record(
            "list first page (desc)",
            "list_messages",
            "GET",
            messages,
            200,
            token=token,
            query="order=desc&limit=2",
        )
        _, page = call("list_messages", "GET", messages, token=token, query="limit=1")
        record(
            "list next page",
            "list_messages",
            "GET",
            messages,
            200,
            token=token,
            query=f"limit=1&cursor={page['next_cursor']}",
        )
        record(
            "upload",
            "create_upload",
            "POST",
            f"{base}/uploads",
            201,
            token=token,
            body={"filename": "a.png", "content_type": "image/png", "size": 10},
        )
        record("delete (3 messages)", "delete_session", "DELETE", base, 200, token=token)
    return {
        name: {
            "round_trips": spread([float(round_trips(window)) for window, _ in values]),
            "requests": spread([float(len(window)) for window, _ in values]),
            "request_bytes": spread([float(sent_bytes(window)) for window, _ in values]),
            "read_units": spread([read for _, (read, _) in values]),
            "write_units": spread([write for _, (_, write) in values]),
            "calls": Counter(operations(values[0][0])).most_common(),
        }
        for name, values in samples.items()
    }


def append_units(calls: Calls, runs: int) -> dict[str, Any]:
    """Write units of one append of a 500-character message, with and without a client message_id, on
    a session without title or metadata and on one whose title and metadata are at their limits
    (four-byte characters): the append must not pay for them."""
    from tests.integration.test_worst_case import heaviest_session

    heavy = heaviest_session()
    result: dict[str, Any] = {}
    for label, body in (("small session", {}), ("title and metadata at their limits", heavy)):
        status, created = call("create_session", "POST", "/api/v1/sessions", body=body)
        assert status == 201, created
        path = f"/api/v1/sessions/{created['session_id']}/messages"
        for with_id in (False, True):
            writes, trips = [], []
            for _ in range(runs):
                message = {"role": "user", "content": "x" * CONTENT_CHARS}
                if with_id:
                    message["message_id"] = str(uuid.uuid4())
                with calls.measure() as window:
                    status, reply = call(
                        "append_message", "POST", path, token=created["session_token"], body=message
                    )
                assert status == 201, reply
                writes.append(capacity(window)[1])
                trips.append(float(round_trips(window)))
            result[f"{label}, {'with' if with_id else 'without'} message_id"] = {
                "write_units": spread(writes),
                "round_trips": spread(trips),
            }
    return result


def chat_exchange(calls: Calls, runs: int, history: int) -> dict[str, Any]:
    """One exchange of the chat (a 500-character user message with a message_id, and a 500-character
    reply: the stand-in's, which quotes every earlier user message, cut to that size) on a session that
    already holds `history` messages: DynamoDB requests, round trips, write units, and the service's
    own time around the model call (the handler's time minus the model's), warm."""
    from dataclasses import replace

    from chatvault import llm

    session_id, token = new_session()
    seed_history(session_id, history)
    path = f"/api/v1/sessions/{session_id}/chat"
    model_s: list[float] = []
    real = llm.answer

    def timed(request: Any) -> Any:
        started = time.perf_counter()
        try:
            return replace(real(request), text="y" * CONTENT_CHARS)
        finally:
            model_s.append(time.perf_counter() - started)

    writes, trips, requests, own_ms = [], [], [], []
    llm.answer = timed  # type: ignore[assignment]
    try:
        call("chat", "POST", path, token=token, body={"content": "warm up"})  # a warm function
        for _ in range(runs):
            body = {"content": "x" * CONTENT_CHARS, "message_id": str(uuid.uuid4())}
            model_s.clear()
            with calls.measure() as window:
                started = time.perf_counter()
                status, reply = call("chat", "POST", path, token=token, body=body)
                total = time.perf_counter() - started
            assert status == 201, reply
            writes.append(capacity(window)[1])
            trips.append(float(round_trips(window)))
            requests.append(float(len(window)))
            own_ms.append((total - sum(model_s)) * 1000)
    finally:
        llm.answer = real  # type: ignore[assignment]
    own = sorted(own_ms)
    return {
        "history_messages": history,
        "write_units": spread(writes),
        "round_trips": spread(trips),
        "requests": spread(requests),
        "operations": operations(window),
        "own_ms": {
            "p50": round(statistics.median(own), 2),
            "p95": round(own[max(0, math.ceil(0.95 * len(own)) - 1)], 2),
            "runs": len(own),
        },
    }


def chat_stream_exchange(calls: Calls, runs: int) -> dict[str, Any]:
    """One streamed exchange (ChatStreamFunction's respond, as the web adapter calls it), warm: the
    service's own latency from the model's first token to the first delta it sends, and the requests,
    round trips and write units of the exchange (the reply is written once, not per delta)."""
    from dataclasses import replace

    from chatvault import llm
    from chatvault.http.stream import PlainRequest
    from functions.chat_stream.app import respond

    session_id, token = new_session()
    seed_history(session_id, 20)
    first_token: list[float] = []
    real = llm.stream

    def timed(request: Any) -> Any:
        for n, item in enumerate(real(request)):
            if n == 0:
                first_token.append(time.perf_counter())
            yield replace(item, text="y" * CONTENT_CHARS) if isinstance(item, llm.ModelReply) else item

    added_ms, writes, trips, requests, sent = [], [], [], [], []
    from chatvault.core.settings import get_settings

    os.environ["STAND_IN_WORD_MS"] = "0"  # the stand-in's pauses are not the service's time
    get_settings.cache_clear()
    llm.stream = timed  # type: ignore[assignment]
    try:
        for n in range(runs + 1):  # the first warms the function
            body = json.dumps({"content": "x" * CONTENT_CHARS, "message_id": str(uuid.uuid4())}).encode()
            headers = {"accept": "text/event-stream", "x-session-token": token}
            first_token.clear()
            with calls.measure() as window:
                status, _, chunks = respond(
                    PlainRequest("POST", f"/api/v1/sessions/{session_id}/chat", headers=headers, body=body)
                )
                first_delta = None
                size = 0
                for chunk in chunks:
                    size += len(chunk)
                    if first_delta is None and chunk.startswith(b"event: delta"):
                        first_delta = time.perf_counter()
            assert status == 200
            if n == 0:
                continue
            assert first_delta is not None
            assert first_token
            added_ms.append((first_delta - first_token[0]) * 1000)
            writes.append(capacity(window)[1])
            trips.append(float(round_trips(window)))
            requests.append(float(len(window)))
            sent.append(float(size))
    finally:
        llm.stream = real  # type: ignore[assignment]
        del os.environ["STAND_IN_WORD_MS"]
        get_settings.cache_clear()
    ordered = sorted(added_ms)
    return {
        "first_delta_added_ms": {
            "p50": round(statistics.median(ordered), 3),
            "p95": round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 3),
            "runs": len(ordered),
        },
        "write_units": spread(writes),
        "round_trips": spread(trips),
        "requests": spread(requests),
        "bytes_sent_to_client": spread(sent),
    }


# ---------------------------------------------------------------------------------------------------
# 11. the message events (the bot's events)


def _stream_position() -> tuple[Any, str, str]:
    """A client of the sessions table's stream (not hooked: the stream's reads are Lambda's event
    source mapping's, not the function's), the stream's ARN, and an iterator after its last record."""
    import boto3
    from botocore.config import Config

    from chatvault.core.settings import get_settings

    arn = boto3.client("dynamodb").describe_table(TableName=get_settings().table_name)["Table"][
        "LatestStreamArn"
    ]
    # botocore would send it to the account's endpoint (<account>.streams-ddb...), which moto does not know
    streams = boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST")
    return streams, arn, iterator["ShardIterator"]


def _new_message_records(streams: Any, arn: str, iterator: str) -> list[dict[str, Any]]:
    """The stream's records after `iterator` that PublishMessageEventsFunction's filter lets through,
    as Lambda's event source hands them to it (as tests/helpers.py `new_message_records`, which reads
    the stream from its start: this one reads only what the section wrote)."""
    from infra.template import Stack

    pattern = json.loads(
        Stack.from_template()
        .functions()["PublishMessageEventsFunction"]
        .events["NewMessages"]["Properties"]["FilterCriteria"]["Filters"][0]["Pattern"]
    )
    prefix = pattern["dynamodb"]["Keys"]["sk"]["S"][0]["prefix"]
    records: list[dict[str, Any]] = []
    while True:
        answer = streams.get_records(ShardIterator=iterator, Limit=1000)
        if not answer["Records"]:
            break
        records += answer["Records"]
        iterator = answer["NextShardIterator"]
    return [
        {**record, "eventSourceARN": arn}
        for record in records
        if record["eventName"] in pattern["eventName"]
        and record["dynamodb"]["Keys"]["sk"]["S"].startswith(prefix)
    ]


def _append_batch(calls: Calls, count: int) -> tuple[list[dict[str, Any]], list[Seen]]:
    """A new session with `count` appended messages of CONTENT_CHARS (with a message_id, as section
    2's append), through the append handler: the stream's records of those messages (exactly them,
    in order) and the appends' requests."""
    streams, arn, iterator = _stream_position()
    session_id, token = new_session()
    appended: list[Seen] = []
    for _ in range(count):
        body = {"role": "user", "content": "x" * CONTENT_CHARS, "message_id": str(uuid.uuid4())}
        with calls.measure() as window:
            status, reply = call(
                "append_message", "POST", f"/api/v1/sessions/{session_id}/messages", token=token, body=body
            )
        assert status == 201, reply
        appended += window
    records = _new_message_records(streams, arn, iterator)
    assert len(records) == count, (len(records), count)
    assert {r["dynamodb"]["Keys"]["pk"]["S"] for r in records} == {session_id}
    return records, appended


def _take_events(queue_url: str) -> int:
    """Receive and delete the queue's events, as the bot does (not counted): how many there were."""
    sqs, taken = _reader_of("sqs"), 0
    while True:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not received:
            return taken
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)],
        )
        taken += len(received)


def message_events(calls: Calls, batches: list[int], runs: int) -> dict[str, Any]:
    """PublishMessageEventsFunction invoked, warm, with the stream's records of a batch of `n` new
    messages (appended through the append handler just before, `runs` times a fresh session):
    DynamoDB requests, round trips and read units, SQS requests, request bytes, the invocation's time
    on moto and the function's own part of it (the invocation minus its waits on AWS). The appends'
    requests are checked, not measured again: none goes to SQS (section 2 measures the append)."""
    from chatvault.core.settings import get_settings

    get_settings.cache_clear()
    assert get_settings().events_queue_url, "EVENTS_QUEUE_URL (start_backend)"
    records, _ = _append_batch(calls, 1)
    assert invoke("publish_message_events", {"Records": records}) == {"batchItemFailures": []}  # warm
    assert _take_events(get_settings().events_queue_url) == 1
    result: dict[str, Any] = {}
    append_sqs = 0
    for n in batches:
        samples: dict[str, list[float]] = {
            key: []
            for key in (
                "round_trips",
                "dynamodb_requests",
                "read_units",
                "sqs_requests",
                "request_bytes",
                "sqs_bytes",
                "invocation_ms",
                "own_ms",
            )
        }
        by_op = Counter[str]()
        for _ in range(runs):
            records, appended = _append_batch(calls, n)
            append_sqs += sum(1 for s in appended if s.service == "sqs")
            with calls.measure() as window:
                started = time.perf_counter()
                answer = invoke("publish_message_events", {"Records": records})
                total = time.perf_counter() - started
            assert answer == {"batchItemFailures": []}, answer
            dynamodb = [s for s in window if s.service == "dynamodb"]
            sqs = [s for s in window if s.service == "sqs"]
            assert len(dynamodb) + len(sqs) == len(window), operations(window)
            sent = sum(len(json.loads(s.body)["Entries"]) for s in sqs)
            assert sent == n, (sent, n)  # one event per message
            samples["round_trips"].append(float(round_trips(window)))
            samples["dynamodb_requests"].append(float(len(dynamodb)))
            samples["read_units"].append(capacity(dynamodb)[0])
            samples["sqs_requests"].append(float(len(sqs)))
            samples["request_bytes"].append(float(sent_bytes(window)))
            samples["sqs_bytes"].append(float(sent_bytes(sqs)))
            samples["invocation_ms"].append(total * 1000)
            samples["own_ms"].append((total - waiting(window)) * 1000)
            by_op = Counter(operations(window))
            # the bot takes its events: moto's FIFO queue checks each send against every message it
            # holds (SQS does not), so a queue left full would slow the later runs' sends on moto
            assert _take_events(get_settings().events_queue_url) == n
        result[str(n)] = {
            "messages": n,
            **{key: spread(values) for key, values in samples.items()},
            "by_operation": by_op.most_common(),
        }
    result["append_sqs_requests"] = append_sqs
    return result


# ---------------------------------------------------------------------------------------------------
# 3. append cost against history length, beside LangChain


def append_vs_history(
    calls: Calls, sizes: list[int], appends: int, runs: int, endpoint: str
) -> dict[str, Any]:
    from chatvault.core.settings import get_settings

    # a history longer than MaxSessionMessages (default 1,500), to show an append's cost does not grow
    # with it: the ceiling is lifted for this section only
    ceiling = os.environ.get("MAX_SESSION_MESSAGES")
    os.environ["MAX_SESSION_MESSAGES"] = str(max(sizes) + appends + 1)
    get_settings.cache_clear()
    try:
        return _append_vs_history(calls, sizes, appends, runs, endpoint)
    finally:
        if ceiling is None:
            os.environ.pop("MAX_SESSION_MESSAGES", None)
        else:
            os.environ["MAX_SESSION_MESSAGES"] = ceiling
        get_settings.cache_clear()


def _append_vs_history(
    calls: Calls, sizes: list[int], appends: int, runs: int, endpoint: str
) -> dict[str, Any]:
    ours: dict[str, Any] = {}
    for size in sizes:
        sid, token = new_session()
        seed_history(sid, size)
        trips, sent = [], []
        for _ in range(appends):
            with calls.measure() as window:
                append_one(sid, token)
            trips.append(float(round_trips(window)))
            sent.append(float(sent_bytes(window)))
        ours[str(size)] = {"round_trips": spread(trips), "request_bytes": spread(sent)}
        # moto copies a whole table for each transaction: a table left large slows every later section
        status, body = call("delete_session", "DELETE", f"/api/v1/sessions/{sid}", token=token)
        assert status == 200, body
    smallest, largest = str(sizes[0]), str(sizes[-1])
    ratio = ours[largest]["request_bytes"]["median"] / ours[smallest]["request_bytes"]["median"]
    result: dict[str, Any] = {
        "chatvault": ours,
        "bytes_ratio_largest_to_smallest": round(ratio, 3),
        "chatvault_longest_history": "no limit: one item per message",
    }
    bench_python = ROOT / ".tools/bench/bin/python"
    if bench_python.exists():
        lc_sizes = sorted({s for s in (10, 100, 300) if s <= max(sizes)} | {min(sizes)})
        if max(sizes) > 1000:  # the full run also appends until LangChain's history no longer fits
            lc_sizes.append(100_000)
        result["langchain"] = langchain(bench_python, endpoint, lc_sizes, runs)
    else:
        result["langchain"] = {"skipped": "the .tools/bench venv is not installed (make bench installs it)"}
    return result


def langchain(python: Path, endpoint: str, sizes: list[int], runs: int) -> dict[str, Any]:
    """LangChain's history in its own venv, `runs` times (a fresh table each): per size, round trips
    and bytes of one append; and how many messages a history held before an append failed."""
    outcomes = []
    for _ in range(runs):
        out = subprocess.run(
            [
                str(python),
                str(OUT / "langchain_history.py"),
                endpoint,
                str(CONTENT_CHARS),
                ",".join(str(s) for s in sizes),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        )
        outcomes.append(json.loads(out.stdout.strip().splitlines()[-1]))
    measured = set.intersection(*(set(o["per_size"]) for o in outcomes))
    longest = [o["longest_history"] for o in outcomes]
    return {
        "per_size": {
            size: {
                figure: spread([float(o["per_size"][size][figure]) for o in outcomes])
                for figure in ("round_trips", "request_bytes")
            }
            for size in sorted(measured, key=int)
        },
        "longest_history": None if None in longest else spread([float(n) for n in longest]),
        "failure": outcomes[0]["failure"],
    }


# ---------------------------------------------------------------------------------------------------
# 4. panic delete, 5. sweep


def panic_delete(calls: Calls, sizes: list[int], uploads: int, runs: int) -> dict[str, Any]:
    from chatvault.dal.aws.clients import client

    result: dict[str, Any] = {}
    for size in sizes:
        trips, seconds, per_op = [], [], Counter[str]()
        for _ in range(runs):
            sid, token = new_session()
            seed_history(sid, size)
            for i in range(uploads):
                client("s3").put_object(
                    Bucket=os.environ["UPLOADS_BUCKET"], Key=f"uploads/{sid}/{i}", Body=b"x"
                )
            started = time.perf_counter()
            with calls.measure() as window:
                status, body = call("delete_session", "DELETE", f"/api/v1/sessions/{sid}", token=token)
            seconds.append(time.perf_counter() - started)
            assert status == 200, body
            assert body["erased"] == {"messages": size, "uploads": uploads}, body
            trips.append(float(len(window)))
            per_op = Counter(operations(window))
        result[f"{size} messages, {uploads} uploads"] = {
            "calls": spread(trips),
            "seconds": spread(seconds),
            "by_operation": per_op.most_common(),
        }
    return result


def sweep(calls: Calls, scenarios: list[tuple[int, int]], runs: int) -> dict[str, Any]:
    """The sweep over `objects` files spread evenly over `prefixes` orphaned folders, `runs` times
    (the bucket filled afresh each time), a year after the files were written."""
    from chatvault.core import clock
    from chatvault.dal.aws.clients import client
    from chatvault.logic.sweep_orphans import sweep_orphans

    s3 = client("s3")
    result: dict[str, Any] = {}
    for objects, prefixes in scenarios:
        trips, seconds, by_op = [], [], Counter[str]()
        for _ in range(runs):
            for _ in range(prefixes):
                folder = uuid.uuid4()
                for i in range(objects // prefixes):
                    s3.put_object(Bucket=os.environ["UPLOADS_BUCKET"], Key=f"uploads/{folder}/{i}", Body=b"x")
            real_now = clock.now
            later = real_now().replace(year=real_now().year + 1)
            clock.now = lambda at=later: at  # type: ignore[assignment]
            try:
                started = time.perf_counter()
                with calls.measure() as window:
                    report = sweep_orphans(lambda: 10**9)
                seconds.append(time.perf_counter() - started)
            finally:
                clock.now = real_now  # type: ignore[assignment]
            assert report.objects_deleted == objects, report
            assert report.errors == 0, report
            trips.append(float(len(window)))
            by_op = Counter(operations(window))
        result[f"{objects} objects in {prefixes} prefixes"] = {
            "objects": objects,
            "prefixes": prefixes,
            "calls": spread(trips),
            "seconds": spread(seconds),
            "by_operation": by_op.most_common(),
            "target_without_constant": round(objects / 1000 + prefixes / 100 + objects / 1000, 1),
        }
    return result


# ---------------------------------------------------------------------------------------------------
# 7. a person's rights: the export of a long session, erase-all of a user's sessions


def export(calls: Calls, sizes: list[int], runs: int) -> dict[str, Any]:
    """GET .../export of a session of `size` messages of CONTENT_CHARS: calls, response bytes (the
    export itself, or the export object when it is answered as a link), seconds."""
    from chatvault.dal.aws.clients import client

    result: dict[str, Any] = {}
    for size in sizes:
        trips, seconds, sizes_seen, by_op, form = [], [], [], Counter[str](), ""
        sid, token = new_session()
        seed_history(sid, size)
        for _ in range(runs):
            started = time.perf_counter()
            with calls.measure() as window:
                status, body = call("export_session", "GET", f"/api/v1/sessions/{sid}/export", token=token)
            seconds.append(time.perf_counter() - started)
            assert status == 200, body
            if "download_url" in body:
                form = "link"
                put = next(s for s in window if s.operation == "PutObject")
                sizes_seen.append(float(put.sent_bytes))
            else:
                form = "inline"
                assert len(body["messages"]) == size
                sizes_seen.append(float(len(json.dumps(body, separators=(",", ":"), ensure_ascii=False))))
            trips.append(float(len(window)))
            by_op = Counter(operations(window))
        call("delete_session", "DELETE", f"/api/v1/sessions/{sid}", token=token)
        assert (
            not client("s3")
            .list_objects_v2(Bucket=os.environ["UPLOADS_BUCKET"], Prefix="exports/")
            .get("Contents")
        ), "the panic button erases export objects"
        result[f"{size} messages"] = {
            "messages": size,
            "form": form,
            "calls": spread(trips),
            "bytes": spread(sizes_seen),
            "seconds": spread(seconds),
            "by_operation": by_op.most_common(),
        }
    return result


ERASE_ALL_BUDGET_S = 3600


def erase_all(calls: Calls, users: list[int], messages: int, runs: int) -> dict[str, Any]:
    """DELETE /sessions for a signed-in user with `count` sessions of `messages` messages and one file
    each (jwt mode, for this section only)."""
    from chatvault.core.settings import get_settings
    from chatvault.dal.aws.clients import client

    result: dict[str, Any] = {}
    saved = os.environ.get("AUTH_MODE", "anonymous")
    os.environ["AUTH_MODE"] = "jwt"
    get_settings.cache_clear()
    try:
        for count in users:
            trips, seconds, by_op = [], [], Counter[str]()
            for _ in range(runs):
                user = f"bench-{uuid.uuid4()}"
                for _ in range(count):
                    status, body = call("create_session", "POST", "/api/v1/sessions", body={}, subject=user)
                    assert status == 201, body
                    seed_history(body["session_id"], messages)
                    client("s3").put_object(
                        Bucket=os.environ["UPLOADS_BUCKET"], Key=f"uploads/{body['session_id']}/f", Body=b"x"
                    )
                started = time.perf_counter()
                with calls.measure() as window:
                    # past the function's deadline too (as the largest session's export): on a loaded
                    # machine moto's time alone can pass 28 s, and the report marks that target missed
                    status, body = call(
                        "erase_all_sessions", "DELETE", "/api/v1/sessions", ERASE_ALL_BUDGET_S, subject=user
                    )
                seconds.append(time.perf_counter() - started)
                assert status == 200, body
                assert body["erased"] == {"sessions": count, "messages": count * messages, "uploads": count}
                trips.append(float(len(window)))
                by_op = Counter(operations(window))
            result[f"{count} sessions of {messages} messages and 1 file"] = {
                "sessions": count,
                "calls": spread(trips),
                "seconds": spread(seconds),
                "by_operation": by_op.most_common(),
            }
    finally:
        os.environ["AUTH_MODE"] = saved
        get_settings.cache_clear()
    return result


# ---------------------------------------------------------------------------------------------------
# 8. the largest session the limits allow (MaxSessionMessages x MaxMessageChars): export and erase

# Every character 4 bytes in UTF-8 (the most bytes MaxMessageChars allows in a message)
WIDEST_CHARACTER = "\U0001f642"
# moto answers in its own time, not DynamoDB's or S3's, so the time on AWS is modelled from what is
# measured here (requests, bytes, this process's CPU) and these figures, which the report states:
QUERY_S_PER_MB = 0.040  # a strongly consistent Query answering a full 1 MB page
BATCH_WRITE_S = 0.030  # a BatchWriteItem of 25 deletes
S3_MB_PER_S = 50.0  # one PutObject or UploadPart stream from a Lambda
LAMBDA_VCPU = 1024 / 1769  # a 1,024 MB function has this share of a vCPU
FUNCTION_TIMEOUT_S = 28


_MEMORY_SCRIPT = """
import json, sys


def high_water_mb():  # the process's peak resident memory (ru_maxrss would include the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)


import functions.export_session.app  # noqa: F401 - what the Lambda imports, before measuring
from tests.benchmarks.run import call

imported = high_water_mb()
path = f"/api/v1/sessions/{sys.argv[1]}/export"
status, body = call("export_session", "GET", path, 3600, token=sys.argv[2])
assert status == 200, body
print(json.dumps({"imported_mb": imported, "peak_mb": high_water_mb()}))
"""


def _export_memory(session_id: str, token: str) -> dict[str, float]:
    """The peak resident memory of a process that imports the export function and runs one export
    (what Lambda reports as Max Memory Used), against the same moto."""
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, session_id, token],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'layers/common'}"},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def largest_session(calls: Calls, count: int, chars: int) -> dict[str, Any]:
    """Export (JSON, the link form) and erase a session of `count` messages of `chars` 4-byte
    characters: requests, bytes, the function's CPU and peak memory, seconds on moto, and the modelled
    seconds on AWS beside the functions' time."""
    sid, token = new_session()
    seed_history(sid, count, WIDEST_CHARACTER * chars)
    item_mb = (len((WIDEST_CHARACTER * chars).encode()) + 200) / 1e6
    history_mb = count * item_mb

    # the export runs in this thread (moto answers in its own): this thread's CPU is the function's
    cpu, started = time.thread_time(), time.perf_counter()
    with calls.measure() as window:
        status, body = call("export_session", "GET", f"/api/v1/sessions/{sid}/export", 3600, token=token)
    export_seconds, export_cpu = time.perf_counter() - started, time.thread_time() - cpu
    assert status == 200, body
    memory = _export_memory(sid, token)  # in a process of its own, as Lambda reports it
    by_op = Counter(operations(window))
    written_mb = sum(s.sent_bytes for s in window if s.operation in ("PutObject", "UploadPart")) / 1e6
    queries_on_aws = max(by_op["Query"], math.ceil(history_mb))  # DynamoDB pages at 1 MB
    export_model = export_cpu / LAMBDA_VCPU + queries_on_aws * QUERY_S_PER_MB + written_mb / S3_MB_PER_S

    # the erase runs batches on worker threads: the whole process's CPU, moto's included (an upper bound)
    cpu, started = time.process_time(), time.perf_counter()
    with calls.measure() as erased:
        status, body = call("delete_session", "DELETE", f"/api/v1/sessions/{sid}", 3600, token=token)
    erase_seconds, erase_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert status == 200, body
    erase_ops = Counter(operations(erased))
    from chatvault.core.settings import get_settings

    workers = get_settings().delete_workers
    erase_model = (  # the keys are read a Query at a time (DynamoDB's 1 MB is read before projection)
        erase_cpu / LAMBDA_VCPU
        + max(erase_ops["Query"], math.ceil(history_mb)) * QUERY_S_PER_MB
        + math.ceil(erase_ops["BatchWriteItem"] / workers) * BATCH_WRITE_S
    )
    return {
        "messages": count,
        "message_chars": chars,
        "history_mb": round(history_mb, 1),
        "export": {
            "requests": by_op.most_common(),
            "written_mb": round(written_mb, 1),
            "seconds_on_moto": round(export_seconds, 1),
            "cpu_seconds": round(export_cpu, 2),
            "process_mb_after_imports": memory["imported_mb"],
            "process_peak_mb": memory["peak_mb"],
            "queries_on_aws": queries_on_aws,
            "modelled_seconds_on_aws": round(export_model, 1),
        },
        "erase": {
            "requests": erase_ops.most_common(),
            "seconds_on_moto": round(erase_seconds, 1),
            "cpu_seconds": round(erase_cpu, 2),
            "modelled_seconds_on_aws": round(erase_model, 1),
        },
        "function_timeout_s": FUNCTION_TIMEOUT_S,
        "model": {
            "query_s_per_mb": QUERY_S_PER_MB,
            "batch_write_s": BATCH_WRITE_S,
            "s3_mb_per_s": S3_MB_PER_S,
            "lambda_vcpu": round(LAMBDA_VCPU, 2),
        },
    }


# ---------------------------------------------------------------------------------------------------
# 12. sealing: what a key per conversation costs


@dataclass(frozen=True)
class SealVariant:
    """How a request finds the conversation's key: the session keyed or legacy (plaintext, no key);
    the key lookups done or stubbed out (`lookups` False: what the operation costs without any key
    machinery, the baseline); the key and the deployment's secret held by this process or not."""

    name: str
    keyed: bool
    lookups: bool
    key_held: bool
    secret_held: bool


SEAL_VARIANTS = (
    SealVariant("plaintext", keyed=False, lookups=False, key_held=True, secret_held=True),
    SealVariant("plaintext_cold_start", keyed=False, lookups=False, key_held=True, secret_held=False),
    SealVariant("legacy", keyed=False, lookups=True, key_held=True, secret_held=True),
    SealVariant("keyed_warm", keyed=True, lookups=True, key_held=True, secret_held=True),
    SealVariant("keyed_cold", keyed=True, lookups=True, key_held=False, secret_held=True),
    SealVariant("keyed_cold_start", keyed=True, lookups=True, key_held=False, secret_held=False),
)
SEAL_TITLE = "bench title"
SEAL_METADATA = {"topic": "bench"}
SEAL_HISTORY = 20  # messages in each measured session (sealed, or plaintext in a legacy one)
SEAL_PAGE = 20  # messages a list request asks for
SEAL_TTL_MOVE = "append moving the key's TTL (hourly)"


def _keys_table() -> str:
    return os.environ["KEYS_TABLE"]


def _tables(seen: Seen) -> set[str]:
    """The DynamoDB tables a request names."""
    if seen.service != "dynamodb" or seen.body[:1] != b"{":
        return set()
    request = json.loads(seen.body)
    if "TableName" in request:
        return {request["TableName"]}
    if "RequestItems" in request:
        return set(request["RequestItems"])
    if "TransactItems" in request:
        return {next(iter(entry.values()))["TableName"] for entry in request["TransactItems"]}
    return set()


def _keys_request(seen: Seen) -> bool:
    """A request made only because conversations have keys: a read of the keys table."""
    return _tables(seen) == {_keys_table()}


def _secret_read(seen: Seen) -> bool:
    """A read of the deployment's secret (the wrapping key is derived from it; so are the audit's
    fingerprints, which is why a cold start of an auditing operation reads it with or without keys)."""
    return seen.operation == "GetSecretValue"  # (botocore's event names say "secrets-manager")


def _keys_units(window: list[Seen]) -> tuple[float, float]:
    """(read units, write units) spent on the keys table: its reads, and its items inside a
    transaction (the key a create writes, a TTL moved, the key an erase deletes)."""
    from tests.benchmarks.capacity import units

    reads = writes = 0.0
    for seen in window:
        tables = _tables(seen)
        if _keys_table() not in tables:
            continue
        if tables == {_keys_table()}:
            read, write = units(seen.operation, seen.body, seen.answer, _stored)
        else:  # a transaction across tables: its keys-table entries alone
            entries = [
                entry
                for entry in json.loads(seen.body)["TransactItems"]
                if next(iter(entry.values()))["TableName"] == _keys_table()
            ]
            body = json.dumps({"TransactItems": entries}).encode()
            read, write = units(seen.operation, body, None, _stored)
        reads, writes = reads + read, writes + write
    return reads, writes


def sequential(window: list[Seen]) -> int:
    """Round trips on the request's critical path: the longest chain of requests each sent after the
    one before it was answered (a request that waits for another's answer costs a round trip even
    while a third is in flight, which `round_trips`' waves would not count)."""
    chain, free_at = 0, float("-inf")
    for seen in sorted(window, key=lambda s: s.ended):
        if seen.started >= free_at:
            chain, free_at = chain + 1, seen.ended
    return chain


@contextmanager
def every_aws_call() -> Iterator[Counter[str]]:
    """Every AWS request any botocore client sends meanwhile, by service (kms, secretsmanager, ...):
    not only those of the clients the Calls hooks see."""
    from tests.helpers import REAL_API_CALL, aws_calls_to

    seen = Counter[str]()

    def counted(self: Any, operation: str, params: dict[str, Any]) -> Any:
        seen[self.meta.service_model.service_name] += 1
        return REAL_API_CALL(self, operation, params)

    with aws_calls_to(counted):
        yield seen


@contextmanager
def no_key_lookups() -> Iterator[None]:
    """The key lookups answered "no key" without a request: a plaintext session served as before
    conversations had keys (the baseline the variants are compared with)."""
    from chatvault.dal import conversation_keys

    read, read_many = conversation_keys.read, conversation_keys.read_many
    conversation_keys.read = lambda session_id, at: None  # type: ignore[assignment]
    conversation_keys.read_many = lambda session_ids, at: {}  # type: ignore[assignment]
    try:
        yield
    finally:
        conversation_keys.read, conversation_keys.read_many = read, read_many  # type: ignore[assignment]


def _raw_partition(session_id: str) -> list[dict[str, Any]]:
    from chatvault.core.settings import get_settings

    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {
        "TableName": get_settings().table_name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": session_id}},
        "ConsistentRead": True,
    }
    while True:
        page = _reader().query(**query)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def make_legacy(session_id: str) -> None:
    """Rewrite a keyed session as one written before conversations had keys (as tests/unit/
    test_check_restore.py does): every sealed value opened and stored as its plaintext attribute, the
    session item's `key_id` and `key_expires_at` removed, the key item deleted."""
    from chatvault.core import clock
    from chatvault.core.settings import get_settings
    from chatvault.dal import conversation_keys
    from chatvault.dal.aws.items import (
        SEALED_MESSAGE,
        SEALED_METADATA,
        SEALED_PREVIEW,
        SEALED_TITLE,
        compact_json,
        open_message,
        open_text,
    )

    key = conversation_keys.read(session_id, clock.now())
    assert key is not None, session_id
    for item in _raw_partition(session_id):
        sk = item["sk"]["S"]
        for name in ("key_id", "key_expires_at"):
            item.pop(name, None)
        if SEALED_PREVIEW in item:
            item["preview"] = {
                "S": open_text(key, session_id, sk, SEALED_PREVIEW, item.pop(SEALED_PREVIEW)["B"])
            }
        if SEALED_TITLE in item:
            item["title"] = {"S": open_text(key, session_id, sk, SEALED_TITLE, item.pop(SEALED_TITLE)["B"])}
        if SEALED_METADATA in item:
            plain = json.loads(
                open_text(key, session_id, sk, SEALED_METADATA, item.pop(SEALED_METADATA)["B"])
            )
            item["metadata"] = {"M": {k: {"S": v} for k, v in plain.items()}}
        if SEALED_MESSAGE in item:
            content, metadata = open_message(key, session_id, sk, item.pop(SEALED_MESSAGE)["B"])
            item["content"] = {"S": content}
            if metadata:
                item["meta"] = {"S": compact_json(metadata)}
        _reader().put_item(TableName=get_settings().table_name, Item=item)
    _reader().delete_item(TableName=_keys_table(), Key={"pk": {"S": session_id}})
    conversation_keys.forget(session_id)


def _conversation(variant: SealVariant, messages: int, subject: str | None = None) -> tuple[str, str]:
    """A session with a title, metadata, `messages` seeded messages and one appended (its preview):
    keyed, or rewritten as legacy."""
    status, body = call(
        "create_session",
        "POST",
        "/api/v1/sessions",
        body={"title": SEAL_TITLE, "metadata": SEAL_METADATA},
        subject=subject,
    )
    assert status == 201, body
    sid, token = body["session_id"], body["session_token"]
    if messages:
        seed_history(sid, messages)
    append_one(sid, token, subject=subject, with_id=False)
    if not variant.keyed:
        make_legacy(sid)
    return sid, token


def _held(variant: SealVariant, session_ids: list[str]) -> None:
    """Put this process in the variant's state before a request (outside the measured window)."""
    from chatvault.core import clock
    from chatvault.dal import conversation_keys, secret

    if variant.secret_held:
        secret.wrapping_key()  # read now, if it was forgotten
    else:
        secret.forget()  # a new function instance: nothing read yet
    if not variant.lookups:
        return
    if variant.key_held:  # no request while the key, or that there is none, is held (CACHE_SECONDS)
        for sid in session_ids:
            assert (conversation_keys.read(sid, clock.now()) is not None) is variant.keyed
    else:
        conversation_keys.forget()


# an operation: given the variant's sessions and the run, (the sessions it touches, the request)
SealRequest = tuple[list[str], Callable[[], None]]


def _expect(status_wanted: int, function: str, method: str, path: str, **kwargs: Any) -> Callable[[], None]:
    def request() -> None:
        status, body = call(function, method, path, **kwargs)
        assert status == status_wanted, (function, status, body)

    return request


def _seal_operations() -> dict[str, Callable[[SealVariant, dict[str, Any], int], SealRequest | None]]:
    def session_request(
        function: str, method: str, suffix: str, status: int, which: str = "main", **kwargs: Any
    ) -> Callable[[SealVariant, dict[str, Any], int], SealRequest]:
        def make(variant: SealVariant, ctx: dict[str, Any], run: int) -> SealRequest:
            sid, token = ctx[which]
            body = kwargs.get("body")
            kwargs_now = {**kwargs, "body": body(run)} if callable(body) else kwargs
            request = _expect(
                status, function, method, f"/api/v1/sessions/{sid}{suffix}", token=token, **kwargs_now
            )
            return [sid], request

        return make

    def create(variant: SealVariant, ctx: dict[str, Any], run: int) -> SealRequest | None:
        if not variant.keyed:
            return None  # every session created now is keyed: a plaintext create no longer exists

        def request() -> None:
            status, body = call(
                "create_session",
                "POST",
                "/api/v1/sessions",
                body={"title": SEAL_TITLE, "metadata": SEAL_METADATA},
            )
            assert status == 201, body
            ctx["created"].append((body["session_id"], body["session_token"]))

        return [], request

    def delete(variant: SealVariant, ctx: dict[str, Any], run: int) -> SealRequest:
        sid, token = _conversation(variant, 3)
        return [sid], _expect(200, "delete_session", "DELETE", f"/api/v1/sessions/{sid}", token=token)

    def append_moving_the_key(variant: SealVariant, ctx: dict[str, Any], run: int) -> SealRequest | None:
        """An append when the key's TTL trails the session's new expiry by more than the slack (about
        once an hour of a session's activity): the append moves it in the same transaction."""
        if not variant.keyed:
            return None
        from chatvault.core import clock
        from chatvault.core.settings import get_settings
        from chatvault.dal import conversation_keys
        from chatvault.dal.session_items import epoch, key_slack

        sid, token = ctx["main"]
        retention = timedelta(seconds=get_settings().retention_seconds)
        due = clock.now().timestamp() + retention.total_seconds() - 2 * key_slack(retention).total_seconds()
        stored_due = {":due": {"N": str(epoch(datetime.fromtimestamp(due, UTC)))}}
        _reader().update_item(  # as the last move left them: the key's TTL and the session's record of it
            TableName=get_settings().table_name,
            Key={"pk": {"S": sid}, "sk": {"S": "#S"}},
            UpdateExpression="SET key_expires_at = :due",
            ExpressionAttributeValues=stored_due,
        )
        _reader().update_item(
            TableName=_keys_table(),
            Key={"pk": {"S": sid}},
            UpdateExpression="SET expires_at = :due",
            ExpressionAttributeValues=stored_due,
        )
        conversation_keys.forget(sid)  # held from here on as read: with that TTL
        path = f"/api/v1/sessions/{sid}/messages"
        return [sid], _expect(201, "append_message", "POST", path, token=token, body=message)

    message = {"role": "user", "content": "x" * CONTENT_CHARS}
    return {
        "create": create,
        "get session": session_request("get_session", "GET", "", 200),
        "PATCH (title)": session_request(
            "update_session", "PATCH", "", 200, body=lambda run: {"title": f"renamed {run}"}
        ),
        "append": session_request("append_message", "POST", "/messages", 201, body=lambda run: message),
        "append with message_id": session_request(
            "append_message",
            "POST",
            "/messages",
            201,
            body=lambda run: {**message, "message_id": str(uuid.uuid4())},
        ),
        SEAL_TTL_MOVE: append_moving_the_key,
        "list messages (first page)": session_request(
            "list_messages", "GET", "/messages", 200, query=f"limit={SEAL_PAGE}"
        ),
        "list messages (newest first)": session_request(
            "list_messages", "GET", "/messages", 200, query=f"order=desc&limit={SEAL_PAGE}"
        ),
        "export": session_request("export_session", "GET", "/export", 200, which="export"),
        "chat turn": session_request(
            "chat",
            "POST",
            "/chat",
            201,
            body=lambda run: {"content": "x" * CONTENT_CHARS, "message_id": str(uuid.uuid4())},
        ),
        "delete (panic button, 3 messages)": delete,
    }


def _seal_sample(
    calls: Calls, variant: SealVariant, touched: list[str], request: Callable[[], None]
) -> tuple[dict[str, float], Counter[str]]:
    """One request in the variant's state: its requests (the keys table's and the secret's among
    them), round trips (those the keys table's requests added), units (the keys table's among them)
    and time."""
    _held(variant, touched)
    with no_key_lookups() if not variant.lookups else nullcontext(), calls.measure() as window:
        started = time.perf_counter()
        request()
        seconds = time.perf_counter() - started
    reads, writes = capacity(window)  # right away: an update is sized by the item it left
    key_reads, key_writes = _keys_units(window)
    trips = sequential(window)
    sample = {
        "requests": float(len(window)),
        "key_requests": float(sum(1 for s in window if _keys_request(s))),
        "secret_reads": float(sum(1 for s in window if _secret_read(s))),
        "round_trips": float(trips),
        "added_round_trips": float(trips - sequential([s for s in window if not _keys_request(s)])),
        "read_units": reads,
        "write_units": writes,
        "keys_read_units": key_reads,
        "keys_write_units": key_writes,
        "ms": seconds * 1000,
    }
    return sample, Counter(operations(window))


def _summarize(samples: list[dict[str, float]], operations_seen: Counter[str]) -> dict[str, Any]:
    ms = sorted(s["ms"] for s in samples)
    figures: dict[str, Any] = {
        name: spread([s[name] for s in samples]) for name in samples[0] if name != "ms"
    }
    figures["ms"] = {
        "p50": round(statistics.median(ms), 2),
        "p95": round(ms[max(0, math.ceil(0.95 * len(ms)) - 1)], 2),
        "runs": len(ms),
    }
    figures["calls"] = operations_seen.most_common()
    return figures


def _item_sizes() -> dict[str, Any]:
    """Bytes of each item of one conversation (a title, metadata, one 500-character message with a
    message_id), as DynamoDB sizes them, keyed and then rewritten as legacy."""
    from chatvault.core import seal
    from tests.benchmarks.capacity import item_bytes

    keyed = SealVariant("sizes", keyed=True, lookups=True, key_held=True, secret_held=True)
    sid, token = _conversation(keyed, 0)
    append_one(sid, token)

    def sizes() -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for item in _raw_partition(sid):
            sk = item["sk"]["S"]
            label = {"#S": "session item", "!P": "profile"}.get(sk) or (
                "message (500 characters)" if sk.startswith("M#") else "message_id marker"
            )
            if label in found and label.startswith("message ("):  # the one with a message_id
                continue
            found[label] = {"bytes": item_bytes(item), "attributes": sorted(item)}
        key_item = _reader().get_item(TableName=_keys_table(), Key={"pk": {"S": sid}}, ConsistentRead=True)
        if "Item" in key_item:
            found["key item (keys table)"] = {
                "bytes": item_bytes(key_item["Item"]),
                "attributes": sorted(key_item["Item"]),
            }
        return found

    sealed = sizes()
    make_legacy(sid)
    plain = sizes()
    call("delete_session", "DELETE", f"/api/v1/sessions/{sid}", token=token)
    return {
        "seal_overhead_bytes": seal.OVERHEAD,
        "items": {
            label: {
                "legacy_bytes": plain.get(label, {}).get("bytes", 0),
                "keyed_bytes": figures["bytes"],
                "added_bytes": figures["bytes"] - plain.get(label, {}).get("bytes", 0),
                "keyed_only_attributes": sorted(
                    set(figures["attributes"]) - set(plain.get(label, {}).get("attributes", []))
                ),
                "legacy_only_attributes": sorted(
                    set(plain.get(label, {}).get("attributes", [])) - set(figures["attributes"])
                ),
            }
            for label, figures in sealed.items()
        },
    }


def _crypto_us(iterations: int) -> dict[str, float]:
    """Microseconds of CPU for the cryptography alone: sealing and opening one
    500-character message, and unwrapping a conversation's key."""
    from chatvault.core import seal
    from chatvault.dal import secret
    from chatvault.dal.aws.items import open_message, seal_message

    key, sid, sk = seal.new_key(), str(uuid.uuid4()), "M#00000000000000000001"
    wrapped = seal.seal(secret.wrapping_key(), seal.place(sid, "key", "data_key"), key)
    content = "x" * CONTENT_CHARS
    sealed = seal_message(key, sid, sk, content, {})

    def per_call(work: Callable[[], object]) -> float:
        started = time.thread_time()  # this thread's: not moto's, which answers in threads of its own
        for _ in range(iterations):
            work()
        return round((time.thread_time() - started) / iterations * 1e6, 1)

    return {
        "seal_message_us": per_call(lambda: seal_message(key, sid, sk, content, {})),
        "open_message_us": per_call(lambda: open_message(key, sid, sk, sealed)),
        "unwrap_key_us": per_call(
            lambda: seal.unseal(secret.wrapping_key(), seal.place(sid, "key", "data_key"), wrapped)
        ),
        "iterations": iterations,
    }


def _secret_reads_after_a_cold_start(calls: Calls, ctx: dict[str, Any], requests: int) -> dict[str, Any]:
    """A new function instance (nothing held) serving `requests` requests on keyed sessions, each
    missing the key cache: how many times it reads the deployment's secret."""
    from chatvault.dal import conversation_keys, secret

    sid, token = ctx["main"]
    base = f"/api/v1/sessions/{sid}"
    secret.forget()
    reads = 0
    for n in range(requests):
        conversation_keys.forget()  # a session this instance has not served in the last minutes
        function, path, query = (
            ("get_session", base, "") if n % 2 else ("list_messages", f"{base}/messages", "limit=5")
        )
        with calls.measure() as window:
            status, body = call(function, "GET", path, token=token, query=query)
        assert status == 200, body
        reads += sum(1 for s in window if _secret_read(s))
    return {"requests": requests, "secret_reads": reads}


def sealing(calls: Calls, runs: int, owned: int) -> dict[str, Any]:
    """Each user-facing operation on a keyed session (its key held by this process, not held, and on
    a cold start: neither the key nor the deployment's secret held) beside the same operation on a
    legacy plaintext session (as served now, and with its key lookups stubbed out: the cost without
    keys). Every variant's request of a run is measured before the next run's, so whatever slows
    moto as the table grows slows them alike. `owned`: sessions of the list-sessions page."""
    from dataclasses import replace

    from chatvault import llm
    from chatvault.core.settings import get_settings
    from chatvault.dal import conversation_keys, secret
    from chatvault.dal.aws.clients import client

    saved = {name: os.environ.get(name) for name in ("EXPORT_LIMIT_PER_HOUR", "AUTH_MODE")}
    os.environ["EXPORT_LIMIT_PER_HOUR"] = "1000"  # a session exported `runs` times in the hour
    get_settings.cache_clear()
    real_answer = llm.answer
    llm.answer = lambda request: replace(real_answer(request), text="y" * CONTENT_CHARS)  # type: ignore[assignment]
    secrets = client("secretsmanager")
    calls.hook(secrets)  # this section only: the other sections' windows never read the secret
    operations = _seal_operations()
    samples: dict[str, dict[str, list[dict[str, float]]]] = {op: {} for op in operations}
    samples["list sessions (a page)"] = {}
    by_op: dict[tuple[str, str], Counter[str]] = {}
    try:
        with every_aws_call() as services:
            contexts = {
                v.name: {
                    "main": _conversation(v, SEAL_HISTORY),
                    "export": _conversation(v, SEAL_HISTORY),
                    "created": [],
                }
                for v in SEAL_VARIANTS
            }
            for run in range(runs):
                for name, operation in operations.items():
                    for variant in SEAL_VARIANTS:
                        made = operation(variant, contexts[variant.name], run)
                        if made is None:
                            continue
                        sample, by_op[name, variant.name] = _seal_sample(calls, variant, *made)
                        samples[name].setdefault(variant.name, []).append(sample)
            list_samples = _list_sessions_runs(calls, runs, owned, by_op)
            samples["list sessions (a page)"] = list_samples
            after_cold_start = _secret_reads_after_a_cold_start(calls, contexts["keyed_warm"], 10)
            measured = sum(len(v) for per in samples.values() for v in per.values())
            kms_calls = services["kms"]
            for ctx in contexts.values():  # moto copies whole tables for each transaction: keep it small
                for sid, token in [ctx["main"], ctx["export"], *ctx["created"]]:
                    status, body = call("delete_session", "DELETE", f"/api/v1/sessions/{sid}", token=token)
                    assert status == 200, body
        sizes = _item_sizes()
    finally:
        llm.answer = real_answer  # type: ignore[assignment]
        calls.unhook(secrets)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
        secret.wrapping_key()
        conversation_keys.forget()
    return {
        "runs": runs,
        "history_messages": SEAL_HISTORY,
        "page_messages": SEAL_PAGE,
        "owned_sessions": owned,
        "cache_seconds": conversation_keys.CACHE_SECONDS,
        "operations": {
            name: {variant: _summarize(rows, by_op[name, variant]) for variant, rows in per.items()}
            for name, per in samples.items()
        },
        "item_sizes": sizes,
        "crypto": _crypto_us(2000 if runs > 10 else 200),
        "secret_after_cold_start": after_cold_start,
        "aws_calls": {"requests_measured": measured, "kms": kms_calls},
    }


def _list_sessions_runs(
    calls: Calls, runs: int, owned: int, by_op: dict[tuple[str, str], Counter[str]]
) -> dict[str, list[dict[str, float]]]:
    """GET /sessions (a signed-in user's page of `owned` sessions, jwt mode for this part only), each
    variant's user owning sessions of its kind."""
    from chatvault.core.settings import get_settings

    os.environ["AUTH_MODE"] = "jwt"
    get_settings.cache_clear()
    users: dict[str, tuple[str, list[str]]] = {}
    rows: dict[str, list[dict[str, float]]] = {}
    try:
        for variant in SEAL_VARIANTS:
            subject = f"bench-{uuid.uuid4()}"
            users[variant.name] = (subject, [_conversation(variant, 0, subject)[0] for _ in range(owned)])
        for _ in range(runs):
            for variant in SEAL_VARIANTS:
                subject, owned_ids = users[variant.name]
                request = _expect(
                    200, "list_sessions", "GET", "/api/v1/sessions", subject=subject, query=f"limit={owned}"
                )
                sample, by_op["list sessions (a page)", variant.name] = _seal_sample(
                    calls, variant, owned_ids, request
                )
                rows.setdefault(variant.name, []).append(sample)
        for subject, _ in users.values():
            status, body = call("erase_all_sessions", "DELETE", "/api/v1/sessions", subject=subject)
            assert status == 200, body
    finally:
        os.environ["AUTH_MODE"] = "anonymous"
        get_settings.cache_clear()
    return rows


# ---------------------------------------------------------------------------------------------------
# 6. warm overhead with stubbed AWS calls


def warm_overhead(iterations: int) -> dict[str, Any]:
    from chatvault.core import clock
    from tests.helpers import aws_calls_to

    at = clock.now()
    sid, token = str(uuid.uuid4()), "t" * 43
    from chatvault.logic.rules.access import hash_token

    session_item = {
        "pk": {"S": sid},
        "sk": {"S": "#S"},
        "kind": {"S": "session"},
        "token_hash": {"S": hash_token(token)},
        "status": {"S": "active"},
        "created_at": {"S": at.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
        "updated_at": {"S": at.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
        "message_count": {"N": "50"},
        "expires_at": {"N": str(int(at.timestamp()) + 3600)},
        "profile_expires_at": {"N": str(int(at.timestamp()) + 7200)},
    }
    profile_item = {
        "pk": {"S": sid},
        "sk": {"S": "!P"},
        "kind": {"S": "profile"},
        "title": {"S": "t"},
        "metadata": {"M": {}},
        "expires_at": {"N": str(int(at.timestamp()) + 7200)},
    }
    message_items = [
        {
            "pk": {"S": sid},
            "sk": {"S": f"M#{i:020d}"},
            "kind": {"S": "message"},
            "message_id": {"S": str(uuid.uuid4())},
            "role": {"S": "user"},
            "content": {"S": "x" * CONTENT_CHARS},
            "created_at": {"S": at.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
            "expires_at": {"N": str(int(at.timestamp()) + 3600)},
        }
        for i in range(50)
    ]
    canned = {
        "GetItem": {"Item": session_item},
        "BatchGetItem": {
            "Responses": {os.environ["TABLE_NAME"]: [session_item, profile_item]},
            "UnprocessedKeys": {},
        },
        "UpdateItem": {"Attributes": session_item},
        "TransactWriteItems": {},
        "Query": {"Items": [session_item, *message_items], "Count": 51, "ScannedCount": 51},
    }

    def stub(self: Any, operation: str, params: dict[str, Any]) -> Any:
        return canned[operation]

    base = f"/api/v1/sessions/{sid}"
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "create": ("create_session", api_event("POST", "/api/v1/sessions", body={"title": "t"})),
        "get": ("get_session", api_event("GET", base, token=token)),
        "patch": ("update_session", api_event("PATCH", base, body={"title": "u"}, token=token)),
        "append": (
            "append_message",
            api_event(
                "POST", f"{base}/messages", token=token, body={"role": "user", "content": "x" * CONTENT_CHARS}
            ),
        ),
        "list a page of 50": (
            "list_messages",
            api_event("GET", f"{base}/messages", token=token, query="limit=50"),
        ),
    }
    result: dict[str, Any] = {}
    with aws_calls_to(stub):
        for name, (function, event) in cases.items():
            for _ in range(20):  # warm up: imports, caches, pydantic
                assert invoke(function, event)["statusCode"] < 300
            cpu = []
            for _ in range(iterations):
                started = time.process_time()
                invoke(function, event)
                cpu.append((time.process_time() - started) * 1000)
            result[name] = {"cpu_ms": spread(cpu)}
    return result


# ---------------------------------------------------------------------------------------------------


def _largest(quick: bool, messages: int) -> tuple[int, int]:
    """The largest session the deployment's defaults allow (a small one for the smoke test), or one
    of `messages` messages at MaxMessageChars."""
    from chatvault.core.settings import get_settings

    settings = get_settings()
    if quick:
        return 20, 2000
    return messages or settings.max_session_messages, settings.max_message_chars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (the smoke test)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated sections to run alone (e.g. export,erase_all): printed, no report written",
    )
    parser.add_argument(
        "--largest-messages",
        type=int,
        default=0,
        help="messages of the largest-session section (default: MaxSessionMessages)",
    )
    args = parser.parse_args(argv)
    quick = args.quick

    server, endpoint = start_backend()
    sys.path[:0] = [str(ROOT), str(ROOT / "layers/common")]
    import logging

    logging.getLogger("chatvault").setLevel(logging.WARNING)
    calls = Calls()
    report: dict[str, Any] = {
        "quick": quick,
        "content_chars": CONTENT_CHARS,
        "python": sys.version.split()[0],
        "machine": os.uname().machine,
    }
    runs = 2 if quick else 3  # repeats of the long-running sections
    try:
        sections: list[tuple[str, Callable[[], Any]]] = [
            ("cold_start", lambda: cold_start(2 if quick else 7, endpoint)),
            ("per_operation", lambda: per_operation(calls, 2 if quick else 5)),
            ("append_units", lambda: append_units(calls, 2 if quick else 5)),
            ("chat", lambda: chat_exchange(calls, 10 if quick else 100, 20)),
            ("chat_stream", lambda: chat_stream_exchange(calls, 10 if quick else 100)),
            ("message_events", lambda: message_events(calls, [1, 10, 100], runs=2 if quick else 5)),
            ("sealing", lambda: sealing(calls, 5 if quick else 100, 3 if quick else 10)),
            # before the large sections: a warm Lambda's heap is small, and the collector's passes over
            # the 10,000-item sections' leftovers in this process would be charged to each request
            ("warm_overhead", lambda: warm_overhead(30 if quick else 300)),
            (
                "append_vs_history",
                lambda: append_vs_history(
                    calls, [10, 100] if quick else [10, 1000, 10000], 2 if quick else 5, runs, endpoint
                ),
            ),
            (
                "panic_delete",
                lambda: panic_delete(calls, [100] if quick else [100, 10000], 10 if quick else 100, runs),
            ),
            (
                "sweep",
                lambda: sweep(calls, [(200, 20), (40, 40)] if quick else [(10000, 1000), (1000, 1000)], runs),
            ),
            ("export", lambda: export(calls, [200] if quick else [10000], runs)),
            ("erase_all", lambda: erase_all(calls, [20] if quick else [200], 5, runs)),
            (
                "largest_session",
                lambda: largest_session(calls, *_largest(quick, args.largest_messages)),
            ),
        ]
        only = {name for name in args.only.split(",") if name}
        if only:
            sections = [(name, section) for name, section in sections if name in only]
        for name, section in sections:
            started = time.perf_counter()
            report[name] = section()
            print(f"[bench] {name}: {time.perf_counter() - started:.1f} s", flush=True)
            trim_streams()
    finally:
        server.stop()
    if args.only:
        print(json.dumps({k: v for k, v in report.items() if k in args.only.split(",")}, indent=2))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    from tests.benchmarks.report import render

    (args.out / "report.md").write_text(render(report))
    print(f"[bench] wrote {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
