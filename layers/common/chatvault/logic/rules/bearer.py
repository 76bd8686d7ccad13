"""AuthMode=both: the bearer token, verified here because it is optional there (API Gateway's JWT
authorizer refuses every request without one). The checks are the JWT authorizer's: an asymmetric
signature by one of the issuer's published keys (dal/jwks.py), `iss` equal to JwtIssuer, JwtAudience
in `aud` or equal to `client_id` (Cognito's access tokens carry the latter), `exp` (and `nbf`, `iat`
when present) with no leeway. Any failure is 401 `unauthenticated`: a request with a bad bearer token
is refused, never treated as anonymous."""

from __future__ import annotations

import jwt

from chatvault.core.errors import UnauthenticatedError
from chatvault.core.settings import get_settings
from chatvault.dal import jwks

# Never "none" nor an HMAC: the key is public, so a symmetric algorithm would let anyone sign.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
MAX_TOKEN_CHARS = 16_384
MAX_SUBJECT_CHARS = 256


def subject_of(authorization: str) -> str:
    """The `sub` claim of a valid `Authorization: Bearer <jwt>`."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        raise UnauthenticatedError()
    settings = get_settings()
    key = jwks.signing_key(token)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            issuer=settings.jwt_issuer,
            options={"verify_aud": False, "require": ["exp", "iss", "sub"]},
        )
    except Exception as exc:
        # Whatever verifying raises is a token that did not verify, not a fault of the service: PyJWT
        # raises a TypeError, not a PyJWTError, when the header names an algorithm the key cannot
        # verify (ES256 under an RSA key id), and an unauthenticated client must not get a 500.
        raise UnauthenticatedError() from exc
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if settings.jwt_audience not in audiences and claims.get("client_id") != settings.jwt_audience:
        raise UnauthenticatedError()
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_CHARS:
        raise UnauthenticatedError()
    return subject
