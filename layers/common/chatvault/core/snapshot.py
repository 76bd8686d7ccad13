"""Lambda SnapStart (opt-in: the template's SnapStart parameter).

With SnapStart, Lambda runs a function's init (its imports) once per published version, snapshots
the memory, and starts new instances from the snapshot instead of importing again. What is safe to
snapshot: nothing unique is created at import. Ids and tokens come from the OS at call time (uuid4,
secrets), the retry jitter too (dal/aws/retry.py); the secret, the settings, the clients and the thread
pool are created on first use, in an invocation, so no instance restored from the snapshot shares
their state, and the only module state (logic/rules/pace.py's memory of recent appends) is empty at import.

What a snapshot can also hold: the AWS clients, which are costly to create (the botocore session and
the service model: about 0.1 s each) but open no connection until their first request. `prime`
registers their creation to run before the snapshot is taken, so a restored instance has them
ready; without SnapStart (or outside Lambda) the hooks never run and nothing is created early. Lambda
provides `snapshot_restore_py` in its managed Python runtimes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def prime(create: Callable[[], Any]) -> None:
    """Run `create` before Lambda snapshots this instance (only under SnapStart)."""
    try:
        from snapshot_restore_py import register_before_snapshot
    except ImportError:  # not in Lambda's managed runtime: no snapshot will be taken
        return
    register_before_snapshot(create)
