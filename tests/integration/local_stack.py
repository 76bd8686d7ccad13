"""Start `make dev`'s stack (python -m infra.local.dev) on free loopback ports for a test session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LocalStack:
    api: str
    moto: str
    moto_port: int
    log: Path
    state: Path

    def client(self, service: str) -> Any:
        """A boto3 client of the stack's emulator (its tables, bucket, queues), whatever the test's
        own AWS environment says."""
        return boto3.client(
            service,
            endpoint_url=self.moto,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@contextmanager
def local_stack(tmp: Path, overrides: str = "", env: dict[str, str] | None = None) -> Iterator[LocalStack]:
    port, moto_port = free_port(), free_port()
    log = tmp / f"dev-{port}.log"
    env = {
        **os.environ,
        "PORT": str(port),
        "MOTO_PORT": str(moto_port),
        "PARAMETER_OVERRIDES": overrides,
        "CHATVAULT_DEV_STATE": str(tmp / "dev-stack.json"),  # where `make invoke` finds this stack
        **(env or {}),
    }
    for name in ("TABLE_NAME", "UPLOADS_BUCKET", "AUTH_MODE", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local.dev"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    api = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{api}/api/v1/ready-check", timeout=2).status_code == 404:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or its first (cold) answer is slow on a loaded machine
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"local stack did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield LocalStack(api, f"http://127.0.0.1:{moto_port}", moto_port, log, tmp / "dev-stack.json")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def table_items(stack: LocalStack) -> list[dict[str, Any]]:
    """Every item of every table of the emulator (a scan per table)."""
    ddb = boto3.client("dynamodb", endpoint_url=stack.moto, region_name="us-east-1")
    items: list[dict[str, Any]] = []
    for name in ddb.list_tables()["TableNames"]:
        items += ddb.scan(TableName=name)["Items"]
    return items


PAST_INLINE_MESSAGES = 165  # of 32,000 characters: 5.3 MB, over the 5 MB an export answers inline


def fill_past_inline(api: str, session_id: str, token: str, prefix: str) -> None:
    """Append PAST_INLINE_MESSAGES user messages over HTTP, 4 at a time, so that the session's export
    is answered as a link: message n's content starts `f"{n:05d} {prefix}"`."""
    url, auth = f"{api}/api/v1/sessions/{session_id}/messages", {"X-Session-Token": token}

    def append(n: int) -> None:
        content = f"{n:05d} {prefix}" + "x" * 32_000
        reply = requests.post(url, headers=auth, json={"role": "user", "content": content}, timeout=30)
        assert reply.status_code == 201, reply.text

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(append, range(PAST_INLINE_MESSAGES)))


def queue_url(stack: LocalStack, logical_id: str) -> str:
    """The emulator's URL of one of the template's queues (FIFO queues' names end in .fifo)."""
    sqs = boto3.client("sqs", endpoint_url=stack.moto, region_name="us-east-1")
    for name in (f"chatvault-local-{logical_id}.fifo", f"chatvault-local-{logical_id}"):
        try:
            return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
        except sqs.exceptions.QueueDoesNotExist:
            continue
    raise LookupError(logical_id)
