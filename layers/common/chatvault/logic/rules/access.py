"""Who is calling, and whether a session is theirs.

anonymous sessions: a 256-bit random token is issued once at create; only its SHA-256 is stored and it
is compared in constant time. Missing token: 401. Wrong token: 404, like a session that does not exist.
signed-in users (jwt, both): the principal is the bearer token's `sub` claim. In jwt mode API
Gateway's JWT authorizer has verified the token; in both mode the token is optional, which that
authorizer cannot express, so the function verifies it (logic/rules/bearer.py).
service writer: the chatbot's back end on /api/v1/service/..., authorized by API Gateway's IAM check;
it may read and write any live session, with any message role.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from chatvault.core import bounds, clock
from chatvault.core.errors import (
    RoleNotAllowedError,
    SessionNotFoundError,
    TokenRequiredError,
    UnauthenticatedError,
)
from chatvault.core.settings import get_settings
from chatvault.models.domain import Principal, SessionRecord

_UUID = re.compile(f"^{bounds.UUID_PATTERN}$")


class Caller(BaseModel):
    """What the HTTP layer knows about the caller: the session token header and/or the JWT subject."""

    model_config = ConfigDict(frozen=True)

    token: str | None = None
    subject: str | None = None
    client_ip: str | None = None
    service: str | None = None  # the IAM caller's ARN, on the service writer's routes only

    @property
    def fingerprint(self) -> str:
        """Who the caller is for rate limits and the audit trail, without storing who they are: an
        HMAC of the JWT subject, or else of the source IP address, under today's key (dal/secret.py)."""
        from chatvault.dal import secret  # not at import: the resolver of every function imports Caller

        if self.service:
            basis = f"iam:{self.service}"
        elif self.subject:
            basis = f"sub:{self.subject}"
        else:
            basis = f"ip:{self.client_ip or 'unknown'}"
        return secret.client_fingerprint(basis, clock.now().date())


def new_token() -> tuple[str, str]:
    """A fresh session token and the hash to store."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_canonical_id(text: str) -> bool:
    """A lowercase UUID, as every id of the service is stored."""
    return bool(_UUID.match(text))


def session_id_from_path(raw: str) -> str:
    """The canonical (lowercase) id, or 404: a path id that is not a UUID names no session."""
    candidate = raw.strip().lower()
    if not is_canonical_id(candidate):
        raise SessionNotFoundError()
    return candidate


def principal_of(caller: Caller) -> Principal:
    """The principal for an operation on an existing session (401 when the caller sent none). In
    both mode a request with a bearer token is judged by it, one without by its session token."""
    if caller.service:
        return Principal(service=True)
    mode = get_settings().auth_mode
    if mode == "jwt" or (mode == "both" and caller.subject):
        if not caller.subject:
            raise UnauthenticatedError()
        return Principal(owner_id=caller.subject)
    if not caller.token:
        raise TokenRequiredError()
    return Principal(token_hash=hash_token(caller.token))


def check_role(role: str, caller: Caller) -> None:
    """ClientRoles: the roles an end user's credentials may append (the service writer: any)."""
    if caller.service is None and role not in get_settings().client_roles:
        raise RoleNotAllowedError(
            f"The role {role!r} may not be written with these credentials; the bot's back end writes it "
            "through the service routes."
        )


def authorize(record: SessionRecord | None, principal: Principal) -> SessionRecord:
    """The session if the principal may see it; otherwise 404, never telling which check failed."""
    if record is None or not principal.may_use(record):
        raise SessionNotFoundError()
    return record


def authorize_live(record: SessionRecord | None, principal: Principal, at: datetime) -> SessionRecord:
    """The session if it is the principal's and live at `at` (not expired, not being erased);
    otherwise 404, never telling which check failed."""
    if not principal.may_use_live(record, at):
        raise SessionNotFoundError()
    return record
