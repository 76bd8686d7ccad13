"""AuthMode=both: anonymous sessions and signed-in users in one deployment, the bearer token verified
by the function (it is optional, which API Gateway's JWT authorizer cannot express), and the claim
that makes an anonymous session the signed-in user's."""

from __future__ import annotations

import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers import assert_error, call, create
from tests.issuer import KEY_ID, Issuer

pytestmark = pytest.mark.usefixtures("aws")

SESSIONS = "/api/v1/sessions"


def _anonymous() -> tuple[str, str]:
    body = create(body={"title": "before sign-in"}).body
    assert body["session_token"]
    return body["session_id"], body["session_token"]


def test_either_credential_works_and_a_jwt_session_has_no_token(both_mode: Issuer) -> None:
    sid, token = _anonymous()
    assert call("GET", f"{SESSIONS}/{sid}", token=token).status == 200
    mine = create(headers=both_mode.bearer("alice"), body={"title": "signed in"}).body
    assert mine["session_token"] is None
    assert call("GET", f"{SESSIONS}/{mine['session_id']}", headers=both_mode.bearer("alice")).status == 200
    assert_error(
        call("GET", f"{SESSIONS}/{mine['session_id']}", headers=both_mode.bearer("bob")),
        404,
        "session_not_found",
    )
    # a request carrying both is judged by the JWT: alice's token does not open bob's view of it
    assert_error(
        call("GET", f"{SESSIONS}/{sid}", token=token, headers=both_mode.bearer("bob")),
        404,
        "session_not_found",
    )
    listed = call("GET", SESSIONS, headers=both_mode.bearer("alice")).body["items"]
    assert [s["title"] for s in listed] == ["signed in"]
    assert_error(call("GET", SESSIONS), 401, "unauthenticated")
    assert_error(call("GET", f"{SESSIONS}/{sid}"), 401, "token_required")


@pytest.mark.parametrize(
    "case",
    [
        "other key",
        "expired",
        "other audience",
        "other issuer",
        "unknown key id",
        "not a jwt",
        "basic",
        "ES256 under the RSA key id",
        "ES512 under the RSA key id",
        "HS256 keyed with the public key",
        "alg none",
        "alg garbage",
        "alg not a string",
        "no alg",
        "key id not a string",
        "header not an object",
    ],
)
def test_a_bad_bearer_token_is_refused_never_treated_as_anonymous(both_mode: Issuer, case: str) -> None:
    """Any failure to verify is 401 `unauthenticated`, never a 500: a header naming an algorithm the
    issuer's key cannot verify made PyJWT raise a TypeError."""
    sid, token = _anonymous()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    tokens = {
        "other key": both_mode.token("alice", key=both_mode.other_key),
        "expired": both_mode.token("alice", lifetime=-60),
        "other audience": both_mode.token("alice", aud="someone-else"),
        "other issuer": both_mode.token("alice", iss="https://evil.example"),
        "unknown key id": both_mode.token("alice", kid="nope"),
        "not a jwt": "abc.def.ghi",
        "ES256 under the RSA key id": jwt.encode(
            both_mode.claims("alice"), ec_key, algorithm="ES256", headers={"kid": KEY_ID}
        ),
        "ES512 under the RSA key id": both_mode.forged("alice", {"alg": "ES512", "kid": KEY_ID}, b"s" * 132),
        "HS256 keyed with the public key": both_mode.forged("alice", {"alg": "HS256", "kid": KEY_ID}),
        "alg none": both_mode.forged("alice", {"alg": "none", "kid": KEY_ID}, b""),
        "alg garbage": both_mode.forged("alice", {"alg": "XYZ-512", "kid": KEY_ID}),
        "alg not a string": both_mode.forged("alice", {"alg": ["RS256"], "kid": KEY_ID}),
        "no alg": both_mode.forged("alice", {"kid": KEY_ID}),
        "key id not a string": both_mode.forged("alice", {"alg": "RS256", "kid": [KEY_ID]}),
        "header not an object": both_mode.forged("alice", [KEY_ID]),
    }
    authorization = "Basic YWxpY2U6cHc=" if case == "basic" else f"Bearer {tokens[case]}"
    reply = call("GET", f"{SESSIONS}/{sid}", token=token, headers={"authorization": authorization})
    assert_error(reply, 401, "unauthenticated")
    assert_error(
        call("POST", SESSIONS, body={}, headers={"authorization": authorization}), 401, "unauthenticated"
    )


def test_an_access_token_with_client_id_instead_of_aud_is_accepted(both_mode: Issuer) -> None:
    """Cognito's access tokens name the app client in `client_id`, not `aud` (as API Gateway accepts)."""
    from tests.issuer import AUDIENCE

    token = both_mode.token("alice", aud=None, client_id=AUDIENCE)
    assert create(headers={"authorization": f"Bearer {token}"}, body={}).body["session_token"] is None


def test_claim_makes_the_session_the_users_and_kills_its_token(both_mode: Issuer) -> None:
    sid, token = _anonymous()
    assert (
        call("POST", f"{SESSIONS}/{sid}/messages", token=token, body={"role": "user", "content": "hi"}).status
        == 201
    )
    alice = both_mode.bearer("alice")

    claimed = call("POST", f"{SESSIONS}/{sid}/claim", token=token, headers=alice)

    assert claimed.status == 200, claimed.body
    assert claimed.body["session_id"] == sid
    assert claimed.body["title"] == "before sign-in"
    assert claimed.body["message_count"] == 1
    assert_error(call("GET", f"{SESSIONS}/{sid}", token=token), 404, "session_not_found")
    assert_error(
        call("POST", f"{SESSIONS}/{sid}/messages", token=token, body={"role": "user", "content": "x"}),
        404,
        "session_not_found",
    )
    assert_error(call("DELETE", f"{SESSIONS}/{sid}", token=token), 404, "session_not_found")
    listed = call("GET", SESSIONS, headers=alice).body["items"]
    assert [s["session_id"] for s in listed] == [sid]
    history = call("GET", f"{SESSIONS}/{sid}/messages", headers=alice).body["items"]
    assert [m["content"] for m in history] == ["hi"]
    # idempotent for its new owner; someone else with the (dead) token learns it is owned
    assert call("POST", f"{SESSIONS}/{sid}/claim", token=token, headers=alice).status == 200
    assert_error(
        call("POST", f"{SESSIONS}/{sid}/claim", token=token, headers=both_mode.bearer("bob")),
        409,
        "session_owned",
    )
    assert call("GET", SESSIONS, headers=both_mode.bearer("bob")).body["items"] == []


def test_claim_needs_the_right_token_and_a_jwt(both_mode: Issuer) -> None:
    sid, token = _anonymous()
    path = f"{SESSIONS}/{sid}/claim"
    alice = both_mode.bearer("alice")
    assert_error(call("POST", path, headers=alice), 401, "token_required")
    assert_error(call("POST", path, token=token), 401, "unauthenticated")
    assert_error(call("POST", path, token="wrong", headers=alice), 404, "session_not_found")
    assert_error(
        call("POST", f"{SESSIONS}/{uuid.uuid4()}/claim", token=token, headers=alice), 404, "session_not_found"
    )
    # a wrong token learns nothing about a claimed session either
    assert call("POST", path, token=token, headers=alice).status == 200
    assert_error(call("POST", path, token="wrong", headers=both_mode.bearer("bob")), 404, "session_not_found")
    # a session created signed in has no token to claim it with
    mine = create(headers=alice, body={}).body["session_id"]
    assert_error(
        call("POST", f"{SESSIONS}/{mine}/claim", token=token, headers=both_mode.bearer("bob")),
        404,
        "session_not_found",
    )


def test_claim_is_audited_without_who_the_user_is(both_mode: Issuer) -> None:
    from chatvault.dal import audit

    sid, token = _anonymous()
    assert (
        call("POST", f"{SESSIONS}/{sid}/claim", token=token, headers=both_mode.bearer("alice")).status == 200
    )
    events = [entry.event for entry in audit.trail(sid)]
    assert events == ["session_created", "session_claimed"]


def test_a_deleted_session_cannot_be_claimed(both_mode: Issuer) -> None:
    sid, token = _anonymous()
    assert call("DELETE", f"{SESSIONS}/{sid}", token=token).status == 200
    assert_error(
        call("POST", f"{SESSIONS}/{sid}/claim", token=token, headers=both_mode.bearer("alice")),
        404,
        "session_not_found",
    )


def test_claim_is_404_outside_both_mode() -> None:
    sid, token = _anonymous()
    assert_error(call("POST", f"{SESSIONS}/{sid}/claim", token=token), 404, "not_found")
