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
    assert set(routes()) == _contract_routes()


def test_the_readme_points_at_the_contract() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "[docs/API.md](docs/API.md)" in readme
