"""template.yaml through SAM's own translator (the SAM CLI's venv has it: `make install`), as
CloudFormation runs it: the language extensions first (infra/template.py), then SAM's transform."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

import pytest

from infra.template import ROOT, load

SAM_PYTHON = Path(os.environ.get("SAM", ROOT / ".tools/sam/bin/sam")).parent / "python"

_SCRIPT = """
import json, sys
from samtranslator.translator.transform import transform
tpl = json.loads(sys.stdin.read())
for r in tpl["Resources"].values():
    if "CodeUri" in r.get("Properties", {}):
        r["Properties"]["CodeUri"] = "s3://bucket/key"
    if "ContentUri" in r.get("Properties", {}):
        r["Properties"]["ContentUri"] = sys.argv[2]
class NoManagedPolicies:
    def load(self):
        return {}
out = transform(tpl, json.loads(sys.argv[1]), NoManagedPolicies())
print(json.dumps(out))
"""


@functools.cache
def transformed(parameters: str = "{}", layer: str = "s3://bucket/layer", path: Path | None = None) -> dict:
    """template.yaml as SAM's translator turns it into CloudFormation, given the parameter values
    (JSON) CloudFormation passes to the transform and the layer's packaged location (`sam deploy`
    uploads each build of the layer under a new key)."""
    if not SAM_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail("SAM CLI venv missing")
        pytest.skip("SAM CLI venv not installed (make install)")
    result = subprocess.run(
        [str(SAM_PYTHON), "-c", _SCRIPT, parameters, layer],
        input=json.dumps(load(path) if path else load()),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    out: dict = json.loads(result.stdout)
    return out
