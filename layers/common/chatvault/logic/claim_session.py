"""POST /sessions/{id}/claim (AuthMode=both): an anonymous session becomes the signed-in caller's.

The caller proves both: the session's token (X-Session-Token) and who they are (the bearer token).
One conditional write (dal/sessions.claim); only when it is refused is the session read, to say why:
404 unless the token is the session's; 200 for a repeat by the new owner (idempotent); 409
`session_owned` when someone else claimed it first; 409 `session_temporary` for a temporary
conversation (it belongs to no account, ever). A wrong token never learns whether a session is owned,
so the 409 tells nothing to anyone without the token."""

from __future__ import annotations

import hmac

from chatvault.core import clock
from chatvault.core.errors import (
    RouteNotFoundError,
    SessionNotFoundError,
    SessionOwnedError,
    SessionTemporaryError,
    TokenRequiredError,
    UnauthenticatedError,
)
from chatvault.core.observability import metrics
from chatvault.core.settings import get_settings
from chatvault.dal import sessions
from chatvault.logic.rules.access import Caller, hash_token, session_id_from_path
from chatvault.models.api import SessionOut
from chatvault.models.domain import AuditEntry


def claim_session(raw_session_id: str, caller: Caller) -> SessionOut:
    if get_settings().auth_mode != "both":
        raise RouteNotFoundError("Claiming a session needs AuthMode=both.")
    session_id = session_id_from_path(raw_session_id)
    if not caller.subject:
        raise UnauthenticatedError()
    if not caller.token:
        raise TokenRequiredError()
    token_hash = hash_token(caller.token)
    at = clock.now()
    entry = AuditEntry(session_id=session_id, event="session_claimed", at=at, actor=caller.fingerprint)
    claimed = sessions.claim(session_id, token_hash, caller.subject, at, entry)
    if claimed is not None:
        metrics.add_metric(name="SessionsClaimed", unit="Count", value=1)
        return SessionOut.of(claimed)

    record = sessions.get(session_id)  # one read, to say why
    if (
        record is None
        or not record.is_live(at)
        or record.token_hash is None
        or not hmac.compare_digest(record.token_hash, token_hash)
    ):
        raise SessionNotFoundError()
    if record.owner_id is not None and hmac.compare_digest(record.owner_id, caller.subject):
        return SessionOut.of(record)  # a repeat by its new owner
    if record.owner_id is not None:
        raise SessionOwnedError()
    if record.temporary:
        raise SessionTemporaryError()
    raise SessionNotFoundError()  # changed under us (erased while the claim was on its way)
