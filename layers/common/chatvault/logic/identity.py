"""Who is calling, and whether a session is theirs.

anonymous: a 256-bit random token is issued once at create; only its SHA-256 is stored and it is
compared in constant time. Missing token: 401. Wrong token: 404, like a session that does not exist.
jwt: API Gateway's JWT authorizer has verified the bearer token; the principal is its `sub` claim.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from pydantic import BaseModel, ConfigDict

from chatvault import clock
from chatvault.errors import SessionNotFoundError, TokenRequiredError, UnauthenticatedError
from chatvault.models.domain import Principal, SessionRecord
from chatvault.settings import get_settings

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Caller(BaseModel):
    """What the HTTP layer knows about the caller: the session token header and/or the JWT subject."""

    model_config = ConfigDict(frozen=True)

    token: str | None = None
    subject: str | None = None
    client_ip: str | None = None

    @property
    def fingerprint(self) -> str:
        """Who the caller is for rate limits and the audit trail, without storing who they are: an
        HMAC of the JWT subject, or else of the source IP address, under today's key (dal/secret.py)."""
        from chatvault.dal import secret  # not at import: the resolver of every function imports Caller

        basis = f"sub:{self.subject}" if self.subject else f"ip:{self.client_ip or 'unknown'}"
        return secret.client_fingerprint(basis, clock.now().date())


def new_token() -> tuple[str, str]:
    """A fresh session token and the hash to store."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def session_id_from_path(raw: str) -> str:
    """The canonical (lowercase) id, or 404: a path id that is not a UUID names no session."""
    candidate = raw.strip().lower()
    if not _UUID.match(candidate):
        raise SessionNotFoundError()
    return candidate


def principal_of(caller: Caller) -> Principal:
    """The principal for an operation on an existing session (401 when the caller sent none)."""
    if get_settings().auth_mode == "jwt":
        if not caller.subject:
            raise UnauthenticatedError()
        return Principal(owner_id=caller.subject)
    if not caller.token:
        raise TokenRequiredError()
    return Principal(token_hash=hash_token(caller.token))


def authorize(record: SessionRecord | None, principal: Principal) -> SessionRecord:
    """The session if the principal may see it; otherwise 404, never telling which check failed."""
    if record is None or not principal.may_use(record):
        raise SessionNotFoundError()
    return record
