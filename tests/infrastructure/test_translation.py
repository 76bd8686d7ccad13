"""What CloudFormation creates from template.yaml is recorded (translated.json: for each resource,
condition and output of the template SAM's translator makes, its type and a digest of its whole
definition), so that a change to how the template is written (its loops, Globals, YAML style) is
proven to leave the stack as it was. A deliberate change to the stack records it again:
`PYTHONPATH=layers/common:. .venv/bin/python -m tests.infrastructure.test_translation`.

The loops are expanded by infra/template.py (for the local stack, the admin command and these tests)
and by cfn-lint for its checks: the two expansions must agree."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from infra.template import ROOT, expand, read
from tests.infrastructure.sam import transformed

RECORD = Path(__file__).with_name("translated.json")

# The transform's inputs that change its output: the defaults, and a deployment with every option on
CASES = {
    "defaults": {},
    "jwt, customer key, alarms by email, a model": {
        "AuthMode": "jwt",
        "CreateUserPool": "true",
        "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
        "AlarmEmail": "ops@example.com",
        "ModelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "SnapStart": "true",
    },
}


def fingerprint(parameters: dict[str, str]) -> dict[str, dict[str, str]]:
    out = transformed(json.dumps(parameters, sort_keys=True))
    entries: dict[str, dict[str, str]] = {}
    for section in ("Resources", "Conditions", "Outputs"):
        for name, definition in out.get(section, {}).items():
            kind = definition.get("Type", section) if section == "Resources" else section
            digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]
            entries[f"{section}/{name}"] = {"type": kind, "digest": digest}
    return entries


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_translated_template_is_as_recorded(case: str) -> None:
    recorded = json.loads(RECORD.read_text())[case]
    now = fingerprint(CASES[case])
    assert sorted(now) == sorted(recorded), "resources added or removed"
    changed = sorted(name for name in now if now[name] != recorded[name])
    assert not changed, f"definitions changed: {changed}"


def test_the_loops_expand_as_cfn_lint_expands_them() -> None:
    from cfnlint.decode import decode_str
    from cfnlint.template import Template
    from cfnlint.template.transforms._language_extensions import language_extension

    text = (ROOT / "template.yaml").read_text()
    decoded, matches = decode_str(text)
    assert not matches
    _, theirs = language_extension(Template("template.yaml", decoded))
    theirs = _plain(theirs)
    ours = expand(read())
    # cfn-lint also resolves what it can for its checks (a mapping's value in us-east-1, the order
    # within a condition's Fn::Equals): the loops' own output is what is compared
    assert set(theirs["Resources"]) == set(ours["Resources"])
    looped = set(ours["Resources"]) - set(read()["Resources"])
    assert looped, "the template has no loop"
    assert {name: theirs["Resources"][name] for name in looped} == {
        name: ours["Resources"][name] for name in looped
    }


def _plain(node: Any) -> Any:
    """cfn-lint's nodes (str, dict and list subclasses that carry their line) as plain values."""
    return json.loads(json.dumps(node))


def test_a_loop_expands_names_subs_and_refs() -> None:
    """The expansion itself, on a loop like the template's."""
    template = {
        "Transform": ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"],
        "Resources": {
            "Fn::ForEach::Alarms": [
                "Name",
                ["CreateSession", "Get-Session"],
                {
                    "&{Name}Alarm": {
                        "Properties": {
                            "Function": {"Ref": {"Fn::Sub": "${Name}Function"}},
                            "Group": {"Fn::Sub": "/aws/lambda/${AWS::StackName}-${Name}"},
                            "Plain": "${Name} stays",
                            "Item": {"Ref": "Name"},
                        }
                    }
                },
            ]
        },
    }
    out = expand(template)
    assert out["Transform"] == "AWS::Serverless-2016-10-31"
    assert set(out["Resources"]) == {"CreateSessionAlarm", "GetSessionAlarm"}
    props = out["Resources"]["GetSessionAlarm"]["Properties"]
    assert props == {
        "Function": {"Ref": "Get-SessionFunction"},
        "Group": {"Fn::Sub": "/aws/lambda/${AWS::StackName}-Get-Session"},
        "Plain": "${Name} stays",
        "Item": "Get-Session",
    }


if __name__ == "__main__":
    RECORD.write_text(json.dumps({case: fingerprint(p) for case, p in CASES.items()}, indent=1) + "\n")
    print(f"recorded {RECORD.relative_to(ROOT)}")
