"""docs/API.md is the contract the repository keeps true: every route of its first part is served,
as it describes it, and every served route is in the contract."""

from __future__ import annotations

import re
from pathlib import Path

from chatvault.http.routes import routes

DOC = (Path(__file__).resolve().parents[2] / "docs/API.md").read_text()


def _contract_routes() -> set[tuple[str, str]]:
    first_part = DOC.split("# Additions, second part")[0]
    rows = re.findall(r"^\| `([A-Z]+) (/api/v1/[^`]*)` \|", first_part, flags=re.MULTILINE)
    return {(method, path) for method, path in rows}


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _second_part_routes() -> set[tuple[str, str]]:
    """`GET|POST /api/v1/...` mentions in the second part, path parameters as `{}`."""
    second_part = DOC.split("# Additions, second part")[1]
    found = re.findall(r"`([A-Z|]+) (/api/v1/[^`?]*)", second_part)
    return {(method, _shape(path)) for methods, path in found for method in methods.split("|")}


def test_every_route_of_the_contract_is_served_and_nothing_else() -> None:
    contract = _contract_routes()
    assert len(contract) == 9
    served = set(routes())
    assert contract <= served
    extra = {(method, _shape(path)) for method, path in served - contract}
    assert extra <= _second_part_routes(), "served routes that no part of the contract names"


def test_the_second_part_names_the_identity_routes() -> None:
    assert {
        ("POST", "/api/v1/sessions/{}/claim"),
        ("GET", "/api/v1/service/sessions/{}"),
        ("GET", "/api/v1/service/sessions/{}/messages"),
        ("POST", "/api/v1/service/sessions/{}/messages"),
    } <= _second_part_routes()


def test_the_readme_points_at_the_contract() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "[docs/API.md](docs/API.md)" in readme
