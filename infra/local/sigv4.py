"""The local gateway's IAM check for the service writer's routes: a request must carry an AWS
Signature Version 4 (service `execute-api`) made with the local stack's credentials (access key
`testing`, secret `testing`, region us-east-1), as API Gateway's AWS_IAM authorization checks it with
the caller's real ones. botocore's own signer recomputes the signature over the headers the request
says it signed; any difference, a missing signature, another key, scope or service, or a clock more
than five minutes off, is API Gateway's 403 `{"message": "Forbidden"}`."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.template import REGION

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
SERVICE = "execute-api"
MAX_SKEW = timedelta(minutes=5)
ACCOUNT = "123456789012"


def verify(method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, Any] | None:
    """The `requestContext.authorizer.iam` of a correctly signed request; None otherwise. `url` is the
    full URL the client signed (scheme, host, path and query); `headers` are lowercased."""
    authorization = headers.get("authorization", "")
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        return None
    fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
    credential = fields.get("Credential", "").split("/")
    signed = [h for h in fields.get("SignedHeaders", "").split(";") if h]
    amz_date = headers.get("x-amz-date", "")
    if len(credential) != 5 or "host" not in signed or not amz_date or not fields.get("Signature"):
        return None
    key, day, region, service, terminal = credential
    if key != ACCESS_KEY or region != REGION or service != SERVICE or terminal != "aws4_request":
        return None
    try:
        at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    if day != amz_date[:8] or abs(datetime.now(UTC) - at) > MAX_SKEW:
        return None
    if any(name not in headers for name in signed):
        return None
    request = AWSRequest(method=method, url=url, data=body, headers={n: headers[n] for n in signed})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(
        Credentials(ACCESS_KEY, SECRET_KEY, headers.get("x-amz-security-token")), SERVICE, REGION
    )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        return None
    return {
        "accessKey": ACCESS_KEY,
        "accountId": ACCOUNT,
        "callerId": f"AIDA{ACCOUNT}LOCAL",
        "principalOrgId": None,
        "userArn": f"arn:aws:iam::{ACCOUNT}:user/local-service-writer",
        "userId": f"AIDA{ACCOUNT}LOCAL",
        "cognitoIdentity": None,
    }
