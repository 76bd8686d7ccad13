"""A stand-in identity provider on loopback, for AuthMode=both (where the functions verify bearer
tokens against the issuer's published keys): OpenID discovery at
`{issuer}/.well-known/openid-configuration`, its key set at `{issuer}/jwks.json`, and RS256 tokens
signed with its key (or, for the tests that must be refused, with another)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

AUDIENCE = "chatvault-test-client"
KEY_ID = "test-key-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.requests = 0

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}

    def claims(self, subject: str, lifetime: int = 600, **claims: Any) -> dict[str, Any]:
        now = int(time.time())
        payload = {"iss": self.url, "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + lifetime}
        payload.update(claims)
        return payload

    def token(
        self, subject: str, *, key: Any = None, kid: str = KEY_ID, lifetime: int = 600, **claims: Any
    ) -> str:
        payload = self.claims(subject, lifetime, **claims)
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": kid})

    def forged(self, subject: str, header: Any, signature: bytes | None = None) -> str:
        """A token with valid claims under any header at all, its signature an HMAC-SHA256 keyed with
        the issuer's public key (the classic algorithm confusion) unless one is given."""
        public = self.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        segments = [_b64(json.dumps(header).encode()), _b64(json.dumps(self.claims(subject)).encode())]
        signing_input = ".".join(segments).encode()
        mac = hmac.new(public, signing_input, hashlib.sha256).digest()
        return ".".join([*segments, _b64(mac if signature is None else signature)])

    def bearer(self, subject: str, **kwargs: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(subject, **kwargs)}"}


@contextmanager
def local_issuer() -> Iterator[Issuer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    issuer = Issuer(f"http://127.0.0.1:{server.server_address[1]}")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer.requests += 1
            if self.path == "/.well-known/openid-configuration":
                body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks.json"}
            elif self.path == "/jwks.json":
                body = issuer.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
