"""The Python client (clients/python) against `make dev`'s stack, as a bot back end uses it: the
browser's side with the session token, the bot's side with SigV4 (the local credentials), and the
claim in both mode. These are also the issue's checks from outside: a token client appending
`assistant` (403), a signed service append (201), a badly signed one (403)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from chatvault_client import (
    BearerAuth,
    ChatVault,
    ConflictError,
    ForbiddenError,
    IamAuth,
    NotFoundError,
    UnauthorizedError,
)
from chatvault_client import models as client_models

from tests.integration.conftest import UNLIMITED
from tests.integration.local_stack import LocalStack, local_stack
from tests.issuer import AUDIENCE, Issuer

LOCAL = Credentials("testing", "testing")
OPENAPI = Path(__file__).resolve().parents[2] / "layers/common/chatvault/openapi.json"


@pytest.fixture(scope="module")
def both_stack(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[LocalStack]:
    overrides = f"AuthMode=both JwtIssuer={issuer.url} JwtAudience={AUDIENCE} {UNLIMITED}"
    with local_stack(tmp_path_factory.mktemp("both"), overrides) as running:
        yield running


def test_a_bot_reads_the_history_and_replies_through_the_service_writer(stack: LocalStack) -> None:
    browser = ChatVault(stack.api)
    created = browser.create_session(title="helpline")
    assert created.session_token
    user = browser.with_token(created.session_token)
    for text in ("one", "two", "three"):
        user.append(created.session_id, "user", text)
    with pytest.raises(ForbiddenError) as refused:
        user.append(created.session_id, "assistant", "forged")
    assert refused.value.code == "role_not_allowed"

    bot = ChatVault(stack.api, IamAuth(region="us-east-1", credentials=LOCAL))
    history = list(bot.messages(created.session_id, page_size=2))  # two pages and a half
    assert [m.content for m in history] == ["one", "two", "three"]
    reply = bot.append(created.session_id, "assistant", "echo: three", metadata={"model": "stand-in"})
    assert reply.role == "assistant"
    again = bot.append(
        created.session_id,
        "assistant",
        "echo: three",
        metadata={"model": "stand-in"},
        message_id=reply.message_id,
    )
    assert again == reply  # idempotent: stored once
    with pytest.raises(ConflictError):
        bot.append(created.session_id, "assistant", "other", message_id=reply.message_id)
    assert bot.get_session(created.session_id).message_count == 4
    assert [m.role for m in user.messages(created.session_id)] == ["user", "user", "user", "assistant"]
    user.delete_session(created.session_id)
    with pytest.raises(NotFoundError):
        bot.get_session(created.session_id)


def _signed(
    stack: LocalStack, path: str, body: dict[str, object], credentials: Credentials
) -> requests.Response:
    url = f"{stack.api}{path}"
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=url, data=data, headers={"content-type": "application/json"})
    SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    return requests.post(url, data=data, headers=dict(request.headers.items()), timeout=10)


def test_the_local_gateway_checks_the_signature(stack: LocalStack) -> None:
    created = ChatVault(stack.api).create_session()
    path = f"/api/v1/service/sessions/{created.session_id}/messages"
    body = {"role": "assistant", "content": "hi"}
    assert _signed(stack, path, body, LOCAL).status_code == 201
    for bad in (Credentials("testing", "wrong-secret"), Credentials("other-key", "testing")):
        answer = _signed(stack, path, body, bad)
        assert answer.status_code == 403
        assert answer.json() == {"message": "Forbidden"}
    assert requests.post(f"{stack.api}{path}", json=body, timeout=10).status_code == 403  # unsigned
    # a signature over another body does not cover this one
    url = f"{stack.api}{path}"
    request = AWSRequest(method="POST", url=url, data=b'{"role":"assistant","content":"a"}', headers={})
    SigV4Auth(LOCAL, "execute-api", "us-east-1").add_auth(request)
    tampered = requests.post(
        url, data=b'{"role":"system","content":"b"}', headers=dict(request.headers.items()), timeout=10
    )
    assert tampered.status_code == 403
    history = ChatVault(stack.api).with_token(created.session_token or "").messages(created.session_id)
    assert [m.content for m in history] == ["hi"]


def test_claim_through_the_client_in_both_mode(both_stack: LocalStack, issuer: Issuer) -> None:
    anonymous = ChatVault(both_stack.api).create_session(title="onboarding")
    token = anonymous.session_token or ""
    ChatVault(both_stack.api).with_token(token).append(anonymous.session_id, "user", "hello")
    alice = ChatVault(both_stack.api, BearerAuth(issuer.token("alice")))

    claimed = alice.claim(anonymous.session_id, token)

    assert claimed.session_id == anonymous.session_id
    with pytest.raises(NotFoundError):
        ChatVault(both_stack.api).with_token(token).get_session(anonymous.session_id)
    assert [s.session_id for s in alice.sessions()] == [anonymous.session_id]
    assert [m.content for m in alice.messages(anonymous.session_id)] == ["hello"]
    assert alice.claim(anonymous.session_id, token).session_id == anonymous.session_id  # a repeat
    with pytest.raises(ConflictError) as owned:
        ChatVault(both_stack.api, BearerAuth(issuer.token("bob"))).claim(anonymous.session_id, token)
    assert owned.value.code == "session_owned"
    with pytest.raises(UnauthorizedError):
        ChatVault(both_stack.api, BearerAuth(issuer.token("alice", key=issuer.other_key))).get_session(
            anonymous.session_id
        )
    # the bot writes to the signed-in user's session as to any other
    bot = ChatVault(both_stack.api, IamAuth(region="us-east-1", credentials=LOCAL))
    bot.append(anonymous.session_id, "assistant", "welcome back")
    assert [m.role for m in alice.messages(anonymous.session_id)] == ["user", "assistant"]


def test_a_new_session_id_on_every_append_unless_given(stack: LocalStack) -> None:
    created = ChatVault(stack.api).create_session()
    user = ChatVault(stack.api).with_token(created.session_token or "")
    first = user.append(created.session_id, "user", "same")
    second = user.append(created.session_id, "user", "same")
    assert first.message_id != second.message_id
    uuid.UUID(first.message_id)


@pytest.mark.parametrize(
    ("model", "schema"),
    [
        (client_models.Session, "SessionOut"),
        (client_models.CreatedSession, "CreatedSessionOut"),
        (client_models.Message, "MessageOut"),
        (client_models.MessageMetadata, "MessageMetadata"),
        (client_models.MessagePage, "MessageListOut"),
        (client_models.SessionPage, "SessionListOut"),
        (client_models.DeleteReceipt, "DeleteReceiptOut"),
        (client_models.ErasedCounts, "ErasedCounts"),
        (client_models.Upload, "UploadOut"),
        (client_models.CreateSessionRequest, "CreateSessionRequest"),
        (client_models.UpdateSessionRequest, "UpdateSessionRequest"),
        (client_models.AppendMessageRequest, "AppendMessageRequest"),
        (client_models.CreateUploadRequest, "CreateUploadRequest"),
        (client_models.ErrorBody, "ErrorBody"),
        (client_models.ErrorDetail, "ErrorDetail"),
    ],
)
def test_the_client_models_are_the_documents_schemas(model: type, schema: str) -> None:
    """Field names, and which are required in answers, as the OpenAPI document has them."""
    document = json.loads(OPENAPI.read_text())["components"]["schemas"][schema]
    assert set(model.model_fields) == set(document["properties"]), schema
    assert model.__doc__.split(":")[0].strip() == schema
    if schema.endswith("Out") and schema != "CreatedSessionOut":
        required = {name for name, field in model.model_fields.items() if field.is_required()}
        assert required <= set(document.get("required", [])), schema
