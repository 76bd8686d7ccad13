"""The identity provider's signing keys, for AuthMode=both (where the functions verify bearer tokens
themselves): found through the issuer's OpenID discovery document (`{issuer}/.well-known/
openid-configuration`, as API Gateway's JWT authorizer finds them), fetched on the first signed-in
request of a process and kept five minutes. A token naming a key id the set lacks refreshes it at most
every 30 seconds (PyJWT's PyJWKClient), so made-up key ids cannot hammer the provider."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import lru_cache
from typing import Any

import jwt

from chatvault.core.deadline import CONNECT_TIMEOUT_S, READ_TIMEOUT_S
from chatvault.core.errors import StorageUnavailableError, UnauthenticatedError
from chatvault.core.settings import get_settings

KEYS_LIFETIME_S = 300
REFRESH_COOLDOWN_S = 30
_TIMEOUT_S = CONNECT_TIMEOUT_S + READ_TIMEOUT_S
_UNAVAILABLE = "The identity provider's signing keys could not be fetched; retry shortly."


@lru_cache(maxsize=1)
def _keys() -> jwt.PyJWKClient:
    """The key-set client of the configured issuer (not cached when discovery fails: the next request
    tries again)."""
    discovery = get_settings().jwt_issuer.rstrip("/") + "/.well-known/openid-configuration"
    if not discovery.startswith(("https://", "http://")):
        raise StorageUnavailableError(_UNAVAILABLE)
    try:
        with urllib.request.urlopen(discovery, timeout=_TIMEOUT_S) as answer:  # noqa: S310 - http(s) only
            jwks_uri = json.loads(answer.read(1_000_000))["jwks_uri"]
        return jwt.PyJWKClient(
            str(jwks_uri),
            lifespan=KEYS_LIFETIME_S,
            cooldown_duration=REFRESH_COOLDOWN_S,
            timeout=_TIMEOUT_S,
        )
    except (OSError, ValueError, KeyError, TypeError, jwt.PyJWKClientError) as exc:
        raise StorageUnavailableError(_UNAVAILABLE) from exc


def signing_key(token: str) -> Any:
    """The provider's public key that signed this token (by its `kid`); 401 if the provider has none
    such, 503 if the provider cannot be reached."""
    try:
        return _keys().get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientConnectionError as exc:
        raise StorageUnavailableError(_UNAVAILABLE) from exc
    except jwt.PyJWTError as exc:  # no such key, or a header no JWT has (a `kid` that is not a string)
        raise UnauthenticatedError() from exc


def forget() -> None:
    """Drop the cached keys (tests: another issuer)."""
    _keys.cache_clear()
