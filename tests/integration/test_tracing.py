"""With EnableTracing=true, X-Ray receives timings and annotations, never what a person wrote: Powertools'
Tracer records each handler's response (and any error) as trace metadata unless told not to, and a
response holds session tokens, titles and message content.

The handlers run in a fresh interpreter with the functions' environment as the template sets it with
tracing on (the capture switches are read when the handlers are decorated, at import), and the
tracer's X-Ray provider replaced by a recorder of everything put on a subsegment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from infra.template import ROOT, Stack

SCRIPT = r"""
import contextlib, json, os, sys

os.environ.update(json.loads(sys.argv[1]))
import tests.conftest  # noqa: F401 - the in-process tests' AWS settings
os.environ.update(json.loads(sys.argv[1]))  # ... with the template's tracing switches on top

from moto import mock_aws
from chatvault.core.observability import tracer
from infra.local.emulator import provision
from infra.template import Stack

recorded = []


class Subsegment:
    def put_metadata(self, key, value, namespace=None):
        recorded.append(["metadata", key, value])

    def put_annotation(self, key, value):
        recorded.append(["annotation", key, value])


class Recorder:
    @contextlib.contextmanager
    def in_subsegment(self, name=None, **kwargs):
        recorded.append(["subsegment", name, None])
        yield Subsegment()


assert type(tracer).__name__ == "Tracer", "tracing is on"
tracer.provider = Recorder()

from tests.helpers import call

with mock_aws():
    provision(Stack.from_template())
    created = call("POST", "/api/v1/sessions", body={"title": "TITLE-7f3a", "metadata": {"k": "META-7f3a"}})
    session, token = created.body["session_id"], created.body["session_token"]
    path = f"/api/v1/sessions/{session}"
    call("POST", path + "/messages", token=token, body={"role": "user", "content": "CONTENT-7f3a"})
    call("GET", path + "/messages", token=token)
    call("GET", path + "/export", token=token, query="format=markdown")
    os.environ["EXPORT_INLINE_BYTES"] = "1"  # the link form: its answer carries the object's key
    from chatvault.core.settings import get_settings
    get_settings.cache_clear()
    export_key = call("GET", path + "/export", token=token).body["encryption"]["key"]
    call("POST", path + "/messages", token=token, body={"role": "user", "content": "x" * 10**6})
print(json.dumps({"token": token, "export_key": export_key, "recorded": recorded}, default=repr))
"""


def test_no_body_reaches_the_trace_when_tracing_is_on() -> None:
    # Given the functions' environment as deployed with EnableTracing=true
    function = Stack.from_template({"EnableTracing": "true"}).functions()["AppendMessageFunction"]
    tracing = {k: v for k, v in function.environment.items() if k.startswith("POWERTOOLS_TRACE")}
    assert tracing["POWERTOOLS_TRACE_DISABLED"] == "false"
    tracing["LAMBDA_TASK_ROOT"] = "/var/task"  # Powertools traces only inside Lambda

    # When a session is created, written, read, exported and refused with tracing on
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(tracing)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'layers/common'}:{ROOT}"},
        check=True,
        timeout=120,
    )
    out = json.loads(result.stdout.strip().splitlines()[-1])

    # Then the tracer was really recording ...
    kinds = {kind for kind, _, _ in out["recorded"]}
    assert "subsegment" in kinds
    assert ["annotation", "Service", "chatvault"] in out["recorded"]
    # ... and nothing of a request or response body is in the trace
    trace = json.dumps(out["recorded"])
    for secret in ("TITLE-7f3a", "META-7f3a", "CONTENT-7f3a", out["token"], out["export_key"], "xxxxxxxx"):
        assert secret not in trace
    assert "metadata" not in kinds
