"""How a request proves who sends it:
- SessionTokenAuth: an anonymous session's token (X-Session-Token), as a browser holds it;
- BearerAuth: a signed-in end user's JWT;
- IamAuth: the chatbot back end's AWS credentials (SigV4, service execute-api) on the service
  writer's routes, which may write any role. botocore signs (`pip install chatvault-client[iam]`)."""

from __future__ import annotations

from typing import Any

import requests


class Auth:
    service = False  # the service writer's routes (/api/v1/service/...)

    def headers(self) -> dict[str, str]:
        return {}

    def sign(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class NoAuth(Auth):
    """Only for what needs no credentials: creating an anonymous session, the OpenAPI document."""


class SessionTokenAuth(Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def headers(self) -> dict[str, str]:
        return {"X-Session-Token": self.token}


class BearerAuth(Auth):
    def __init__(self, token: str, session_token: str | None = None) -> None:
        self.token = token
        self.session_token = session_token  # only for claiming an anonymous session

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.session_token:
            headers["X-Session-Token"] = self.session_token
        return headers


class IamAuth(Auth):
    """Signs each request (its final URL, headers and body) with SigV4 for `execute-api`.
    `credentials`: botocore credentials; default: the standard chain (environment, profile, role)."""

    service = True

    def __init__(self, region: str, credentials: Any = None) -> None:
        import botocore.session

        self.region = region
        self.credentials = credentials or botocore.session.get_session().get_credentials()
        if self.credentials is None:
            raise ValueError("No AWS credentials found for IamAuth.")

    def sign(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        raw = request.body
        body = raw if isinstance(raw, bytes) else (raw.encode() if isinstance(raw, str) else b"")
        signed = AWSRequest(
            method=request.method,
            url=request.url,
            data=body,
            headers={k: v for k, v in request.headers.items() if k.lower() in ("content-type", "host")},
        )
        SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return request
