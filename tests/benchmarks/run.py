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
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    from infra.local.template import Stack
    from tests.integration.local_stack import free_port

    port = free_port()
    server = start_moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    stack = Stack.from_template()
    provision(stack, endpoint)
    env = stack.functions()["CreateSessionFunction"].environment
    os.environ.update(
        {
            **env,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "CREATE_LIMIT_PER_MINUTE": "1000000",
            "UPLOAD_LIMIT_PER_MINUTE": "1000000",
        }
    )
    return server, endpoint


class Calls:
    """AWS requests seen by botocore `before-send` hooks: (operation, request bytes)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self._hooked: set[int] = set()

    def hook(self, client: Any) -> None:
        if id(client) in self._hooked:
            return
        self._hooked.add(id(client))
        client.meta.events.register("before-send", self._record)

    def _record(self, request: Any, event_name: str, **_: Any) -> None:
        body = request.body or b""
        if not isinstance(body, bytes | str):  # a stream (S3 uploads): its declared length
            body = b"\0" * int(request.headers.get("Content-Length", 0))
        self.seen.append(
            (event_name.rsplit(".", 1)[-1], len(body if isinstance(body, bytes) else body.encode()))
        )

    def hook_all(self) -> None:
        from chatvault.dal.audit import AuditItem
        from chatvault.dal.clients import client
        from chatvault.dal.items import ChatItem
        from chatvault.dal.limits import LimitItem

        for model in (ChatItem, AuditItem, LimitItem):
            self.hook(model._get_connection().connection.client)
        for service in ("dynamodb", "s3"):
            self.hook(client(service))

    @contextmanager
    def measure(self) -> Iterator[list[tuple[str, int]]]:
        self.hook_all()
        start = len(self.seen)
        window: list[tuple[str, int]] = []
        yield window
        window.extend(self.seen[start:])


@lru_cache(maxsize=1)
def _timeouts() -> dict[str, int]:
    from infra.local.template import Stack

    return {fn.code_dir.name: fn.timeout for fn in Stack.from_template().functions().values()}


def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
    """One invocation, with the remaining time the function's template Timeout gives it."""
    from importlib import import_module

    from chatvault import deadline
    from infra.local.runtime import LambdaContext

    context = LambdaContext(
        function,
        512,
        f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
        str(uuid.uuid4()),
        time.monotonic() + _timeouts()[function],
    )
    module = import_module(f"functions.{function}.app")
    try:
        result: dict[str, Any] = module.lambda_handler(event, context)
    finally:
        deadline.start(None)  # the invocation is over; direct calls below run without its deadline
    return result


def api_event(
    method: str, path: str, body: Any = None, token: str | None = None, query: str = ""
) -> dict[str, Any]:
    from infra.local.gateway import Gateway, match_route
    from tests.helpers import ROUTES

    found = match_route(ROUTES, method, path)
    assert found is not None
    route, params = found
    headers = {"content-type": "application/json", **({"x-session-token": token} if token else {})}
    data = json.dumps(body).encode() if body is not None else b""
    return Gateway.event(method, path, query, headers, data, route, params, None)


def call(function: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    result = invoke(function, api_event(method, path, **kwargs))
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else None


def new_session() -> tuple[str, str]:
    status, body = call("create_session", "POST", "/api/v1/sessions", body={})
    assert status == 201, body
    return body["session_id"], body["session_token"]


def seed_history(session_id: str, count: int) -> None:
    """A history of `count` messages of CONTENT_CHARS, written as the append writes them (items and
    session counters), without paying for `count` appends."""
    from chatvault import clock
    from chatvault.dal.items import MessageItem, SessionItem
    from chatvault.dal.keys import MESSAGE_PREFIX, SESSION_SK
    from chatvault.dal.messages import position_of

    start = clock.now()
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
                    content="x" * CONTENT_CHARS,
                    created_at=start,
                    expires_at=start.replace(year=start.year + 1),
                )
            )
    SessionItem(session_id, SESSION_SK).update(
        actions=[SessionItem.message_count.set(count), SessionItem.last_position.set(last)]
    )


# ---------------------------------------------------------------------------------------------------
# 1. cold start


def _import_seconds(code: str, cwd: Path, env: dict[str, str]) -> float:
    script = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def cold_start(runs: int, endpoint: str) -> dict[str, Any]:
    from infra.local.template import Stack

    functions = Stack.from_template().functions()
    base_env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT / "layers/common"),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "0",
    }
    boto3_times = [_import_seconds("import boto3", ROOT, base_env) for _ in range(runs)]
    result: dict[str, Any] = {"import_boto3_ms": spread([t * 1000 for t in boto3_times]), "handlers": {}}
    boto3_median = statistics.median(boto3_times)
    for name, fn in sorted(functions.items()):
        env = {**base_env, **fn.environment}
        times = [_import_seconds("import app", fn.code_dir, env) for _ in range(runs)]
        result["handlers"][name] = {
            "import_ms": spread([t * 1000 for t in times]),
            "ratio_to_boto3": round(statistics.median(times) / boto3_median, 2),
        }
    traced_env = {
        **base_env,
        **functions["GetSessionFunction"].environment,
        "POWERTOOLS_TRACE_DISABLED": "false",
    }
    traced = [
        _import_seconds("import app", functions["GetSessionFunction"].code_dir, traced_env)
        for _ in range(runs)
    ]
    result["get_session_with_tracing_ms"] = spread([t * 1000 for t in traced])

    memory: dict[str, float] = {}
    for name, fn in sorted(functions.items()):
        event_file = EVENTS / f"{fn.code_dir.name}.json"
        if not event_file.exists():
            continue
        env = {
            **base_env,
            **fn.environment,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "PYTHONPATH": f"{ROOT}:{ROOT / 'layers/common'}",
        }
        script = (
            "import json, time\n"
            "class Context:\n"
            f"    function_name = {name!r}; memory_limit_in_mb = 512; aws_request_id = 'bench'\n"
            f"    invoked_function_arn = 'arn:aws:lambda:us-east-1:123456789012:function:{name}'\n"
            "    deadline = time.monotonic() + 300\n"
            "    def get_remaining_time_in_millis(self):\n"
            "        return int((self.deadline - time.monotonic()) * 1000)\n"
            "import app\n"
            f"app.lambda_handler(json.load(open({str(event_file)!r})), Context())\n"
            # VmHWM: this process's peak RSS (ru_maxrss would include the parent's, inherited at fork)
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
        )
        env["PYTHONPATH"] = str(ROOT / "layers/common")
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=fn.code_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{name} failed its cold invocation:\n{out.stderr[-2000:]}")
        memory[name] = round(int(out.stdout.strip().splitlines()[-1]) / 1024, 1)
    result["peak_rss_mb_after_one_invocation"] = memory
    return result


# ---------------------------------------------------------------------------------------------------
# 2. per operation


def per_operation(calls: Calls, runs: int) -> dict[str, Any]:
    samples: dict[str, list[tuple[int, int, str]]] = {}

    def record(name: str, function: str, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        with calls.measure() as window:
            status, body = call(function, method, path, **kwargs)
        assert status == expect, (name, status, body)
        samples.setdefault(name, []).append(
            (len(window), sum(b for _, b in window), ",".join(op for op, _ in window))
        )
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
            "round_trips": spread([float(n) for n, _, _ in values]),
            "request_bytes": spread([float(b) for _, b, _ in values]),
            "calls": Counter(values[0][2].split(",")).most_common(),
        }
        for name, values in samples.items()
    }


# ---------------------------------------------------------------------------------------------------
# 3. append cost against history length, beside LangChain


def append_vs_history(calls: Calls, sizes: list[int], appends: int, endpoint: str) -> dict[str, Any]:
    ours: dict[str, Any] = {}
    for size in sizes:
        sid, token = new_session()
        seed_history(sid, size)
        trips, sent = [], []
        for _ in range(appends):
            with calls.measure() as window:
                status, body = call(
                    "append_message",
                    "POST",
                    f"/api/v1/sessions/{sid}/messages",
                    token=token,
                    body={"role": "user", "content": "x" * CONTENT_CHARS, "message_id": str(uuid.uuid4())},
                )
            assert status == 201, body
            trips.append(float(len(window)))
            sent.append(float(sum(b for _, b in window)))
        ours[str(size)] = {"round_trips": spread(trips), "request_bytes": spread(sent)}
    smallest, largest = str(sizes[0]), str(sizes[-1])
    ratio = ours[largest]["request_bytes"]["median"] / ours[smallest]["request_bytes"]["median"]
    result: dict[str, Any] = {
        "chatvault": ours,
        "bytes_ratio_largest_to_smallest": round(ratio, 3),
        "chatvault_longest_history": "no limit: one item per message",
    }
    bench_python = ROOT / ".tools/bench/bin/python"
    if bench_python.exists():
        lc_sizes = [*sorted({s for s in (10, 100, 300) if s <= max(sizes)} | {min(sizes)}), 100_000]
        out = subprocess.run(
            [
                str(bench_python),
                str(OUT / "langchain_history.py"),
                endpoint,
                str(CONTENT_CHARS),
                ",".join(str(s) for s in lc_sizes),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        )
        result["langchain"] = json.loads(out.stdout.strip().splitlines()[-1])
    else:
        result["langchain"] = {"skipped": "the .tools/bench venv is not installed (make bench installs it)"}
    return result


# ---------------------------------------------------------------------------------------------------
# 4. panic delete, 5. sweep


def panic_delete(calls: Calls, sizes: list[int], uploads: int, runs: int) -> dict[str, Any]:
    from chatvault.dal.clients import client

    result: dict[str, Any] = {}
    for size in sizes:
        trips, seconds, per_op = [], [], Counter[str]()
        for _ in range(runs if size <= 1000 else 1):
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
            per_op = Counter(op for op, _ in window)
        result[f"{size} messages, {uploads} uploads"] = {
            "calls": spread(trips),
            "seconds": spread(seconds),
            "by_operation": per_op.most_common(),
        }
    return result


def sweep(calls: Calls, objects: int, prefixes: int) -> dict[str, Any]:
    from chatvault import clock
    from chatvault.dal.clients import client
    from chatvault.logic.sweep_orphans import sweep_orphans

    s3 = client("s3")
    for _ in range(prefixes):
        folder = uuid.uuid4()
        for i in range(objects // prefixes):
            s3.put_object(Bucket=os.environ["UPLOADS_BUCKET"], Key=f"uploads/{folder}/{i}", Body=b"x")
    real_now = clock.now
    later = real_now().replace(year=real_now().year + 1)
    clock.now = lambda: later  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        with calls.measure() as window:
            report = sweep_orphans(lambda: 10**9)
        seconds = time.perf_counter() - started
    finally:
        clock.now = real_now  # type: ignore[assignment]
    assert report.objects_deleted == objects, report
    bound = objects / 1000 + prefixes / 100 + report.objects_deleted / 1000
    by_op = Counter(op for op, _ in window)
    return {
        "objects": objects,
        "prefixes": prefixes,
        "calls": len(window),
        "seconds": round(seconds, 2),
        "by_operation": by_op.most_common(),
        "target_without_constant": round(bound, 1),
        "report": report.model_dump(),
    }


# ---------------------------------------------------------------------------------------------------
# 6. warm overhead with stubbed AWS calls


def warm_overhead(iterations: int) -> dict[str, Any]:
    import botocore.client

    from chatvault import clock

    at = clock.now()
    sid, token = str(uuid.uuid4()), "t" * 43
    from chatvault.logic.identity import hash_token

    session_item = {
        "pk": {"S": sid},
        "sk": {"S": "#S"},
        "kind": {"S": "session"},
        "token_hash": {"S": hash_token(token)},
        "title": {"S": "t"},
        "metadata": {"M": {}},
        "status": {"S": "active"},
        "created_at": {"S": at.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
        "updated_at": {"S": at.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
        "message_count": {"N": "50"},
        "expires_at": {"N": str(int(at.timestamp()) + 3600)},
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
        "UpdateItem": {"Attributes": session_item},
        "TransactWriteItems": {},
        "Query": {"Items": [session_item, *message_items], "Count": 51, "ScannedCount": 51},
    }
    real = botocore.client.BaseClient._make_api_call

    def stub(self: Any, operation: str, params: dict[str, Any]) -> Any:
        return canned[operation]

    botocore.client.BaseClient._make_api_call = stub  # type: ignore[method-assign]
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
    try:
        for name, (function, event) in cases.items():
            for _ in range(20):  # warm up: imports, caches, pydantic
                assert invoke(function, event)["statusCode"] < 300
            cpu = []
            for _ in range(iterations):
                started = time.process_time()
                invoke(function, event)
                cpu.append((time.process_time() - started) * 1000)
            result[name] = {"cpu_ms": spread(cpu)}
    finally:
        botocore.client.BaseClient._make_api_call = real  # type: ignore[method-assign]
    return result


# ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (the smoke test)")
    parser.add_argument("--out", type=Path, default=OUT)
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
    try:
        sections: list[tuple[str, Callable[[], Any]]] = [
            ("cold_start", lambda: cold_start(3 if quick else 7, endpoint)),
            ("per_operation", lambda: per_operation(calls, 2 if quick else 5)),
            (
                "append_vs_history",
                lambda: append_vs_history(
                    calls, [10, 100] if quick else [10, 1000, 10000], 2 if quick else 5, endpoint
                ),
            ),
            (
                "panic_delete",
                lambda: panic_delete(
                    calls, [100] if quick else [100, 10000], 10 if quick else 100, 2 if quick else 3
                ),
            ),
            ("sweep", lambda: sweep(calls, 200 if quick else 10000, 20 if quick else 1000)),
            ("warm_overhead", lambda: warm_overhead(30 if quick else 300)),
        ]
        for name, section in sections:
            started = time.perf_counter()
            report[name] = section()
            print(f"[bench] {name}: {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        server.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    from tests.benchmarks.report import render

    (args.out / "report.md").write_text(render(report))
    print(f"[bench] wrote {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
