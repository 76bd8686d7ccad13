"""A bounded load test on the local stack (loopback only): concurrent clients each run a chat, the
run reports throughput and errors, and every message must be stored exactly once, in order.

`make load` runs it alone and prints the report; `LOAD_CLIENTS` and `LOAD_MESSAGES` scale it."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.integration.local_stack import LocalStack

pytestmark = pytest.mark.http

CLIENTS = int(os.environ.get("LOAD_CLIENTS", "8"))
MESSAGES = int(os.environ.get("LOAD_MESSAGES", "40"))


def _chat(api: str, client: int) -> dict[str, Any]:
    http = requests.Session()
    statuses: list[int] = []
    latencies: list[float] = []

    def send(method: str, url: str, **kwargs: Any) -> requests.Response:
        started = time.perf_counter()
        response = http.request(method, url, timeout=30, **kwargs)
        latencies.append(time.perf_counter() - started)
        statuses.append(response.status_code)
        return response

    session = send("POST", f"{api}/api/v1/sessions", json={"title": f"load {client}"}).json()
    base, auth = (
        f"{api}/api/v1/sessions/{session['session_id']}",
        {"X-Session-Token": session["session_token"]},
    )
    for i in range(MESSAGES):
        send(
            "POST",
            f"{base}/messages",
            headers=auth,
            json={"role": "user", "content": f"client {client} message {i}"},
        )
        if i % 10 == 9:
            send("GET", f"{base}/messages", headers=auth, params={"order": "desc", "limit": 10})
    stored: list[str] = []
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = send("GET", f"{base}/messages", headers=auth, params=params).json()
        stored += [m["content"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    count = send("GET", base, headers=auth).json()["message_count"]
    return {"statuses": statuses, "latencies": latencies, "stored": stored, "count": count, "client": client}


def test_bounded_load_loses_nothing(stack: LocalStack) -> None:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(lambda c: _chat(stack.api, c), range(CLIENTS)))
    elapsed = time.perf_counter() - started

    statuses = [s for r in results for s in r["statuses"]]
    latencies = sorted(lat for r in results for lat in r["latencies"])
    errors = [s for s in statuses if s >= 400]
    report = {
        "clients": CLIENTS,
        "requests": len(statuses),
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(statuses) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
        "errors": len(errors),
        "lost_messages": sum(MESSAGES - len(r["stored"]) for r in results),
    }
    print("\nload report: " + json.dumps(report))

    assert report["requests"] >= CLIENTS * (MESSAGES + 4)
    assert errors == []
    for r in results:
        assert r["stored"] == [f"client {r['client']} message {i}" for i in range(MESSAGES)]
        assert r["count"] == MESSAGES
    assert report["lost_messages"] == 0
