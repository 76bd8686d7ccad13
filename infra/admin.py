"""`make admin ARGS="<command> …"`: the operator's command, against the local stack (`make dev`,
found as `make invoke` finds it) or a deployed one (`--stack <name>`, with your AWS credentials:
they must be allowed to read the stack's outputs, its fingerprint secret and its tables and bucket).

    audit <session_id>                 the session's audit trail (the key is computed from the id)
    erase <session_id> [--reason R]    erase a session by id for a data-subject request, audited
                                       as erased_by_operator (R: data_subject_request, the default,
                                       legal_obligation or abuse)
    sweeps [--last N]                  the orphan sweep's last N reports (default 10), newest first
    restore-check [--table T] [--dry-run]
                                       after a restore: remove every conversation whose key is gone
                                       (erased or expired since the backup) from the sessions table,
                                       or from table T (a restored copy); --dry-run only counts
    restore-copy --table T [--session ID ...] [--dry-run]
                                       after a restore: copy from the restored table T into the
                                       live sessions table the items it no longer holds, never
                                       overwriting one and never an erased or expired conversation
                                       (logic/copy_restore.py); --session: only these; --dry-run
                                       only counts
    seal-legacy [--dry-run]            encrypt the sessions written before conversations had keys
                                       in place: each gets its own key and its plaintext is replaced
                                       by sealed values; safe to interrupt, to run twice and while
                                       the service is live; --dry-run only counts

Output is JSON, one document a line. Exit codes: 0 done; 2 a usage error (a session id that is not a
UUID included); 3 no stack answers; 4 no such session (no audit trail for the id, or nothing to erase),
each with one line on stderr that says so. Through make, make itself then exits 2, after the line and
one of its own (`make: *** [Makefile:…: admin] Error 4`); run `.venv/bin/python -m infra.admin …`
for the code itself."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

from botocore.exceptions import BotoCoreError, ClientError

NOT_FOUND = 4
NO_STACK = 3
# the service's package, which make puts on PYTHONPATH; run directly, the command finds it itself
LAYER = Path(__file__).resolve().parents[1] / "layers/common"


def _session_id(text: str) -> str:
    """A session id as the service writes it (a lowercase UUID); anything else is a usage error."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a session id (a UUID): {text!r}") from None


def _local_environment() -> dict[str, str] | None:
    """The local stack's names and endpoint, as its functions see them (None: no stack answers)."""
    from infra.local.invoke import running_stack
    from infra.template import Stack

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
        "KEYS_TABLE": outputs["KeysTableName"],
        "UPLOADS_BUCKET": outputs["UploadsBucketName"],
        "FINGERPRINT_SECRET": outputs["FingerprintSecretArn"],
    }


def _print(value: Any) -> None:
    """One JSON document a line; times in the contract's form (`2026-11-22T10:04:05.123Z`)."""
    from chatvault.core.clock import iso

    print(
        json.dumps(value, default=lambda v: iso(v) if isinstance(v, datetime) else str(v), ensure_ascii=False)
    )


def main(argv: list[str] | None = None) -> int:
    if str(LAYER) not in sys.path:
        sys.path.insert(0, str(LAYER))
    parser = argparse.ArgumentParser(prog="make admin ARGS=", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", help="a deployed stack's name (default: the local stack of `make dev`)")
    commands = parser.add_subparsers(dest="command", required=True)
    audit_command = commands.add_parser("audit", help="a session's audit trail")
    audit_command.add_argument("session_id", type=_session_id)
    erase_command = commands.add_parser("erase", help="erase a session by id (audited)")
    erase_command.add_argument("session_id", type=_session_id)
    from chatvault.logic.erase_by_operator import Reason

    erase_command.add_argument("--reason", choices=get_args(Reason), default="data_subject_request")
    sweeps_command = commands.add_parser("sweeps", help="the orphan sweep's last reports")
    sweeps_command.add_argument("--last", type=int, default=10)
    restore_command = commands.add_parser(
        "restore-check", help="after a restore: remove the conversations whose key is gone"
    )
    restore_command.add_argument(
        "--table", help="a restored copy of the sessions table (default: the stack's)"
    )
    restore_command.add_argument("--dry-run", action="store_true", help="count, remove nothing")
    copy_help = (
        "after a restore: copy back into the live table the items it lost (absent ones only: an "
        "item present, even damaged, is never overwritten nor repaired; never an erased or expired "
        "conversation)"
    )
    copy_command = commands.add_parser("restore-copy", help=copy_help, description=copy_help)
    # dest "restored", not "table": the live table stays the stack's (TABLE_NAME is not redirected)
    copy_command.add_argument(
        "--table",
        dest="restored",
        required=True,
        metavar="T",
        help="the restored table to copy from (not the live one)",
    )
    copy_command.add_argument(
        "--session",
        dest="sessions",
        type=_session_id,
        nargs="+",
        action="extend",
        metavar="ID",
        help="only these sessions (default: every one in the restored table)",
    )
    copy_command.add_argument("--dry-run", action="store_true", help="count, write nothing")
    seal_command = commands.add_parser(
        "seal-legacy", help="encrypt in place the sessions written before conversations had keys"
    )
    seal_command.add_argument("--dry-run", action="store_true", help="count, write nothing")
    args = parser.parse_args(argv)
    if args.command == "sweeps" and not 1 <= args.last <= 1000:
        parser.error("--last must be between 1 and 1000")

    where = f"stack {args.stack}" if args.stack else "the local stack (make dev)"
    try:
        environment = _deployed_environment(args.stack) if args.stack else _local_environment()
    except (BotoCoreError, ClientError) as exc:  # no such stack, no credentials, no region
        print(f"make admin: cannot read {where}'s outputs: {exc}", file=sys.stderr)
        return NO_STACK
    if environment is None:
        print(
            "make admin: no local stack answers; start one with `make dev`, or pass --stack <name>.",
            file=sys.stderr,
        )
        return NO_STACK
    os.environ.update(environment)
    if getattr(args, "table", None):
        os.environ["TABLE_NAME"] = args.table
    if args.command == "restore-copy" and args.restored == os.environ.get("TABLE_NAME"):
        parser.error(f"--table {args.restored} is the live sessions table: name the restored one")

    from chatvault.core.errors import SessionNotFoundError
    from chatvault.dal import audit

    if args.command == "audit":
        trail = audit.trail(args.session_id)
        for entry in trail:
            _print(entry.model_dump(exclude={"session_id"}))
        if not trail:
            print(
                f"make admin: no audit trail for session {args.session_id} in {where}: no session with "
                "this id was created there, or its entries are past AuditRetentionDays.",
                file=sys.stderr,
            )
            return NOT_FOUND
        return 0
    if args.command == "erase":
        from chatvault.logic.erase_by_operator import erase_by_operator

        try:
            receipt = erase_by_operator(args.session_id, args.reason)
        except SessionNotFoundError:
            receipt = None
        if receipt is None:
            print(
                f"make admin: no session {args.session_id} in {where}: nothing to erase (never created, "
                "already erased, or expired and removed).",
                file=sys.stderr,
            )
            return NOT_FOUND
        _print(receipt.model_dump())
        return 0
    if args.command == "restore-check":
        from chatvault.logic.check_restore import check_restore

        _print(check_restore(dry_run=args.dry_run).model_dump())
        return 0
    if args.command == "restore-copy":
        from chatvault.logic.copy_restore import copy_restore

        try:
            report = copy_restore(args.restored, args.sessions, dry_run=args.dry_run)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            parser.error(f"--table {args.restored}: no such table in {where}")
        _print(report.model_dump())
        return 0
    if args.command == "seal-legacy":
        from chatvault.logic.seal_legacy import seal_legacy

        _print(seal_legacy(dry_run=args.dry_run).model_dump())
        return 0
    for report in audit.sweep_reports(args.last):
        _print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
