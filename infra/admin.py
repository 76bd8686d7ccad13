"""`make admin ARGS="<command> …"`: the operator's command, against the local stack (`make dev`,
found as `make invoke` finds it) or a deployed one (`--stack <name>`, with your AWS credentials:
they must be allowed to read the stack's outputs, its fingerprint secret and its tables and bucket).

    audit <session_id>                 the session's audit trail (the key is computed from the id)
    erase <session_id> [--reason R]    erase a session by id for a data-subject request, audited
                                       as erased_by_operator (R: data_subject_request, the default,
                                       legal_obligation or abuse)
    sweeps [--last N]                  the orphan sweep's last N reports (default 10), newest first

Output is JSON, one document a line; a session that does not exist is exit 4."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any, get_args

NOT_FOUND = 4
NO_STACK = 3


def _local_environment() -> dict[str, str] | None:
    """The local stack's names and endpoint, as its functions see them (None: no stack answers)."""
    from infra.local.invoke import running_stack
    from infra.local.template import Stack

    found = running_stack()
    if found is None:
        return None
    endpoint, overrides = found
    sweep = Stack.from_template(overrides).functions()["SweepOrphansFunction"]
    return {
        **sweep.environment,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _deployed_environment(stack: str) -> dict[str, str]:
    """A deployed stack's names, from its outputs."""
    import boto3

    (described,) = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    return {
        "TABLE_NAME": outputs["SessionsTableName"],
        "AUDIT_TABLE": outputs["AuditTableName"],
        "LIMITS_TABLE": outputs["LimitsTableName"],
        "UPLOADS_BUCKET": outputs["UploadsBucketName"],
        "FINGERPRINT_SECRET": outputs["FingerprintSecretArn"],
    }


def _print(value: Any) -> None:
    """One JSON document a line; times in the contract's form (`2026-11-22T10:04:05.123Z`)."""
    from chatvault.clock import iso

    print(
        json.dumps(value, default=lambda v: iso(v) if isinstance(v, datetime) else str(v), ensure_ascii=False)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make admin ARGS=", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", help="a deployed stack's name (default: the local stack of `make dev`)")
    commands = parser.add_subparsers(dest="command", required=True)
    audit_command = commands.add_parser("audit", help="a session's audit trail")
    audit_command.add_argument("session_id")
    erase_command = commands.add_parser("erase", help="erase a session by id (audited)")
    erase_command.add_argument("session_id")
    from chatvault.logic.erase_by_operator import Reason

    erase_command.add_argument("--reason", choices=get_args(Reason), default="data_subject_request")
    sweeps_command = commands.add_parser("sweeps", help="the orphan sweep's last reports")
    sweeps_command.add_argument("--last", type=int, default=10)
    args = parser.parse_args(argv)
    if args.command == "sweeps" and not 1 <= args.last <= 1000:
        parser.error("--last must be between 1 and 1000")

    environment = _deployed_environment(args.stack) if args.stack else _local_environment()
    if environment is None:
        print(
            "make admin: no local stack answers; start one with `make dev`, or pass --stack <name>.",
            file=sys.stderr,
        )
        return NO_STACK
    os.environ.update(environment)

    from chatvault.dal import audit
    from chatvault.errors import SessionNotFoundError

    if args.command == "audit":
        trail = audit.trail(args.session_id.strip().lower())
        for entry in trail:
            _print(entry.model_dump(exclude={"session_id"}))
        return 0 if trail else NOT_FOUND
    if args.command == "erase":
        from chatvault.logic.erase_by_operator import erase_by_operator

        try:
            receipt = erase_by_operator(args.session_id, args.reason)
        except SessionNotFoundError:
            receipt = None
        if receipt is None:
            print(f"make admin: no session {args.session_id}", file=sys.stderr)
            return NOT_FOUND
        _print(receipt.model_dump())
        return 0
    for report in audit.sweep_reports(args.last):
        _print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
