"""A Lambda-like runtime without Docker: each function runs in its own worker processes (its own
environment, module cache and cold start, like a Lambda execution environment), one invocation at a
time per worker; more workers start when requests overlap."""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from infra.template import ACCOUNT, REGION, Function

MAX_WORKERS_PER_FUNCTION = 16


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def local_environment(fn: Function, endpoint: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **fn.environment,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": fn.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
        "POWERTOOLS_TRACE_DISABLED": "true",
        **(extra or {}),
    }


def _worker(conn: Connection, fn: Function, layer_dirs: list[str], env: dict[str, str]) -> None:
    # Function output (logs, EMF metrics) goes to stderr, as with `sam local invoke`: stdout is the result.
    sys.stdout.flush()
    os.dup2(2, 1)
    os.environ.update(env)
    sys.path[:0] = [str(fn.code_dir), *layer_dirs]
    # A Lambda Web Adapter function (Handler run.sh) is an HTTP server on AWS; here its app module's
    # `respond` is called directly, and the gateway gets its answer chunk by chunk (Runtime.stream)
    web = fn.handler == "run.sh"
    module_name, handler_name = ("app", "respond") if web else fn.handler.rsplit(".", 1)
    try:
        handler = getattr(importlib.import_module(module_name), handler_name)
    except Exception:
        conn.send(("init_error", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        try:
            event = conn.recv()
        except EOFError:
            return
        if web:
            _serve_streaming(conn, handler, event, fn.timeout)
            continue
        context = LambdaContext(
            function_name=fn.name,
            memory_limit_in_mb=fn.memory,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn.name}",
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + fn.timeout,
        )
        try:
            conn.send(("ok", handler(event, context)))
        except Exception as exc:
            conn.send(
                (
                    "error",
                    {
                        "errorType": type(exc).__name__,
                        "errorMessage": str(exc),
                        "stackTrace": traceback.format_exc().splitlines(),
                    },
                )
            )
        sys.stdout.flush()


def _serve_streaming(conn: Connection, respond: Any, request: dict[str, Any], timeout: int) -> None:
    """One request to a web-adapter function: ("head", (status, headers)), then ("chunk", bytes) as each
    is written, then ("end", None), or ("error", ...) if it fails before its head."""
    from chatvault.http.stream import PlainRequest

    fields = {**request, "remaining_ms": timeout * 1000}
    if isinstance(fields.get("body"), str):  # a canned event (tests/events/chat_stream.json): text
        fields["body"] = fields["body"].encode()
    try:
        status, headers, chunks = respond(PlainRequest(**fields))
    except Exception as exc:
        conn.send(("error", {"errorType": type(exc).__name__, "errorMessage": str(exc)}))
        return
    conn.send(("head", (status, headers)))
    for chunk in chunks:
        conn.send(("chunk", chunk))
    conn.send(("end", None))
    sys.stdout.flush()


class FunctionError(RuntimeError):
    """The function raised (API Gateway answers 500) or could not start."""


class _Worker:
    def __init__(self, fn: Function, layer_dirs: list[Path], env: dict[str, str]) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker, args=(child, fn, [str(d) for d in layer_dirs], env), daemon=True
        )
        self.process.start()
        status, detail = self.conn.recv()
        if status != "ready":
            raise FunctionError(f"{fn.name} failed to start:\n{detail}")
        self.timeout = fn.timeout

    def invoke(self, event: dict[str, Any]) -> Any:
        self.conn.send(event)
        if not self.conn.poll(self.timeout + 1):
            self.process.kill()
            raise FunctionError(f"Task timed out after {self.timeout} seconds")
        status, payload = self.conn.recv()
        if status == "head":  # a web-adapter function (make invoke): its whole answer, as one result
            chunks: list[bytes] = []
            while (message := self.conn.recv())[0] == "chunk":
                chunks.append(message[1])
            code, headers = payload
            return {"statusCode": code, "headers": headers, "body": b"".join(chunks).decode()}
        if status != "ok":
            raise FunctionError(payload.get("errorMessage", "error"))
        return payload

    def stream(self, request: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """The head, then each chunk as the function writes it (within its timeout)."""
        self.conn.send(request)
        self._ends = time.monotonic() + self.timeout + 1
        yield from self.stream_rest()

    def stream_rest(self) -> Iterator[tuple[str, Any]]:
        """What is left of the answer being streamed (until its end, or the function's timeout)."""
        ends = self._ends
        while True:
            if not self.conn.poll(max(0.0, ends - time.monotonic())):
                self.process.kill()
                raise FunctionError(f"Task timed out after {self.timeout} seconds")
            kind, payload = self.conn.recv()
            if kind == "error":
                raise FunctionError(payload.get("errorMessage", "error"))
            if kind == "end":
                return
            yield kind, payload

    def close(self) -> None:
        self.process.kill()


class Runtime:
    """Warm workers per function, started on demand."""

    def __init__(
        self,
        functions: dict[str, Function],
        layer_dirs: list[Path],
        endpoint: str,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.functions = functions
        self.layer_dirs = layer_dirs
        self.endpoint = endpoint
        self.extra_env = extra_env or {}
        self._idle: dict[str, list[_Worker]] = {name: [] for name in functions}
        self._count: dict[str, int] = dict.fromkeys(functions, 0)
        self._lock = threading.Condition()

    def _acquire(self, name: str) -> _Worker:
        with self._lock:
            while True:
                if self._idle[name]:
                    return self._idle[name].pop()
                if self._count[name] < MAX_WORKERS_PER_FUNCTION:
                    self._count[name] += 1
                    break
                self._lock.wait()
        fn = self.functions[name]
        try:
            return _Worker(fn, self.layer_dirs, local_environment(fn, self.endpoint, self.extra_env))
        except Exception:
            with self._lock:
                self._count[name] -= 1
                self._lock.notify()
            raise

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        worker = self._acquire(name)
        try:
            result = worker.invoke(event)
        except FunctionError:
            self._drop(name, worker)
            raise
        self._release(name, worker)
        return result

    def stream(self, name: str, request: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """A web-adapter function's answer as it is written: ("head", (status, headers)), then
        ("chunk", bytes)... The worker is busy until the last chunk."""
        worker = self._acquire(name)
        try:
            yield from worker.stream(request)
        except GeneratorExit:  # the gateway stopped reading (its client left): the reply is still made
            for _ in worker.stream_rest():
                pass
            self._release(name, worker)
            raise
        except BaseException:
            self._drop(name, worker)
            raise
        self._release(name, worker)

    def _release(self, name: str, worker: _Worker) -> None:
        """The worker is free for the next invocation (warm)."""
        with self._lock:
            self._idle[name].append(worker)
            self._lock.notify()

    def recycle(self) -> None:
        """As a deployment does: every idle worker stopped, so each function's next invocation is a
        cold start (nothing a warm function kept in memory, such as conversation keys, survives)."""
        with self._lock:
            idle = [(name, worker) for name, workers in self._idle.items() for worker in workers]
            for workers in self._idle.values():
                workers.clear()
            for name, _ in idle:
                self._count[name] -= 1
            self._lock.notify_all()
        for _, worker in idle:
            worker.close()

    def _drop(self, name: str, worker: _Worker) -> None:
        """The worker failed or timed out: stopped, and no longer counted."""
        worker.close()
        with self._lock:
            self._count[name] -= 1
            self._lock.notify()

    def close(self) -> None:
        with self._lock:
            for workers in self._idle.values():
                for worker in workers:
                    worker.close()
