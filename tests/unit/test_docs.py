"""docs/API.md is the contract the repository keeps true: every route of its tables (the first part's,
and those of the second part's implemented sections) is served, as it describes it, and every served
route is in the contract."""

from __future__ import annotations

import re
from pathlib import Path

from chatvault.http.routes import routes

DOC = (Path(__file__).resolve().parents[2] / "docs/API.md").read_text()


def _contract_routes(text: str = DOC) -> set[tuple[str, str]]:
    rows = re.findall(r"^\| `([A-Z]+) (/api/v1/[^`]*)` \|", text, flags=re.MULTILINE)
    return {(method, path) for method, path in rows}


def test_every_route_of_the_contract_is_served_and_nothing_else() -> None:
    assert len(_contract_routes(DOC.split("# Additions, second part")[0])) == 9
    rights = DOC.split("## A person's rights over their data")[1].split("\n## ")[0]
    assert _contract_routes(rights) == {
        ("GET", "/api/v1/sessions/{session_id}/export"),
        ("DELETE", "/api/v1/sessions"),
        ("GET", "/api/v1/sessions/{session_id}/uploads"),
        ("GET", "/api/v1/sessions/{session_id}/uploads/{upload_id}"),
    }
    identity = DOC.split("## Identity: a third mode and a service writer")[1].split("\n## ")[0]
    assert _contract_routes(identity) == {
        ("POST", "/api/v1/sessions/{session_id}/claim"),
        ("GET", "/api/v1/service/sessions/{session_id}"),
        ("GET", "/api/v1/service/sessions/{session_id}/messages"),
        ("POST", "/api/v1/service/sessions/{session_id}/messages"),
    }
    chat = DOC.split("## The chat (the chat issue)")[1].split("\n## ")[0]
    assert _contract_routes(chat) == {
        ("POST", "/api/v1/sessions/{session_id}/chat"),
        ("POST", "/api/v1/chat"),
        ("POST", "/api/v1/sessions/{session_id}/chat/stop"),
    }
    feedback = DOC.split("## Feedback on replies (the chat-history issue)")[1].split("\n## ")[0]
    assert _contract_routes(feedback) == {
        ("PUT", "/api/v1/sessions/{session_id}/messages/{message_id}/feedback"),
        ("DELETE", "/api/v1/sessions/{session_id}/messages/{message_id}/feedback"),
    }
    shares = DOC.split("## Share links (the chat-history issue)")[1].split("\n## ")[0]
    assert _contract_routes(shares) == {
        ("POST", "/api/v1/sessions/{session_id}/shares"),
        ("GET", "/api/v1/sessions/{session_id}/shares"),
        ("DELETE", "/api/v1/sessions/{session_id}/shares/{share_id}"),
        ("GET", "/api/v1/shared/{share_id}"),
    }
    assert set(routes()) == _contract_routes()


def test_the_readme_points_at_the_contract() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "[docs/API.md](docs/API.md)" in readme


def test_the_contract_states_the_body_size_limit_the_service_enforces() -> None:
    """The number, the formula and its range, each as the settings compute them."""
    from chatvault.core import bounds
    from chatvault.core.settings import Settings, get_settings

    settings = get_settings()
    default = Settings.model_fields["max_message_chars"].default
    largest = 65_536  # MAX_MESSAGE_CHARS' upper bound
    at = {
        chars: settings.model_copy(update={"max_message_chars": chars}).max_body_bytes
        for chars in (1, largest)
    }
    assert settings.max_message_chars == default
    text = " ".join(DOC.split())
    assert (
        f"Request body size limit: {settings.max_body_bytes:,} bytes with the default "
        f"`MaxMessageChars` ({default})"
    ) in text
    assert (
        f"{bounds.JSON_STRUCTURE_BYTES:,} + {bounds.JSON_BYTES_PER_CHAR} \N{MULTIPLICATION SIGN} "
        f"(`MaxMessageChars` + {bounds.MESSAGE_METADATA_CHARS:,}) bytes "
        f"({at[1]:,} at `MaxMessageChars` 1, {at[largest]:,} at its largest, {largest})"
    ) in text
    assert "413 `payload_too_large`" in text
