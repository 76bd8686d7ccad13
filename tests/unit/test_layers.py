"""Imports flow one way: functions -> http -> logic -> dal -> core, with models usable by all. Inside
logic, the rules (logic/rules) serve the use cases and never import one; inside dal, the AWS plumbing
(dal/aws) serves the storage modules and never imports one. The model adapter (llm) sits beside dal:
the use cases call it, and it needs only core and models."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers/common/chatvault"

# A module's room, and how low it sits: a module may import from its own room or any lower one.
RANK = {
    "functions": 0,
    "http": 1,
    "logic": 2,
    "logic.rules": 3,
    "dal": 4,
    "llm": 4,
    "dal.aws": 5,
    "core": 6,
}


def _room(module: str) -> str | None:
    """The room of a dotted module inside the package ("chatvault.dal.aws.items" -> "dal.aws")."""
    parts = module.split(".")[1:]
    if not parts or parts[0] in ("models", "__init__"):
        return None  # the package itself, or models: usable by all
    if parts[:2] in (["logic", "rules"], ["dal", "aws"]):
        return ".".join(parts[:2])
    return parts[0]


def _imports(path: Path) -> set[str]:
    """The chatvault modules a file imports (a name imported from a package counts as its module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "chatvault":
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).is_file() or (
                    PACKAGE.parent / candidate.replace(".", "/")
                ).is_dir()
                found.add(candidate if is_module else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "chatvault"}
    return found


def _sources() -> list[tuple[str, Path]]:
    layer = [
        (".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts), p) for p in PACKAGE.rglob("*.py")
    ]
    handlers = [(f"functions.{p.parent.name}", p) for p in (ROOT / "functions").glob("*/app.py")]
    return sorted(layer + handlers)


@pytest.mark.parametrize(("module", "path"), _sources(), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_point_down(module: str, path: Path) -> None:
    room = "functions" if module.startswith("functions.") else _room(module)
    if module == "chatvault.__init__":
        assert not _imports(path)
        return
    if room is None:
        # models: plain shapes, which may lean only on core
        assert all(_room(m) in (None, "core") for m in _imports(path)), module
        return
    assert room in RANK, f"{module}: a room the layering does not know"
    upward = sorted(m for m in _imports(path) if (r := _room(m)) is not None and RANK[r] < RANK[room])
    assert not upward, f"{module} ({room}) imports from a higher room: {upward}"


def test_the_rooms_are_the_tree() -> None:
    """Every folder of the package is a room the layering names (a new folder needs a place in it)."""
    folders = {
        ".".join(p.relative_to(PACKAGE).parts)
        for p in PACKAGE.rglob("*")
        if p.is_dir() and p.name != "__pycache__"
    }
    assert folders == {"http", "logic", "logic.rules", "dal", "dal.aws", "llm", "core", "models"}


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The check itself: a dal module importing a use case is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from chatvault.logic.chat import chat\nfrom chatvault.core import clock\n")
    assert _imports(bad) == {"chatvault.logic.chat", "chatvault.core.clock"}
    assert _room("chatvault.logic.chat") == "logic"
    assert RANK["logic"] < RANK["dal"]


# What the storage modules may read from the settings themselves: where things are (tables, bucket,
# queue, secret, the issuer's keys) and how long the audit table keeps an entry. Every other setting
# (retention, limits, modes) is the use case's to read, once per request, and to pass down.
DAL_SETTINGS = {
    "table_name",
    "audit_table",
    "limits_table",
    "keys_table",
    "uploads_bucket",
    "events_queue_url",
    "fingerprint_secret",
    "jwt_issuer",
    "audit_retention_days",
}


def _settings_read(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    read = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", None) == "get_settings"
    }
    bare = [  # get_settings() kept whole (its reads could not be checked here)
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "get_settings"
    ]
    if len(bare) > sum(
        isinstance(n, ast.Attribute) and isinstance(n.value, ast.Call) and n.value in bare
        for n in ast.walk(tree)
    ):
        read.add("get_settings() kept whole")
    read |= {  # TableName("<setting>")
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "TableName"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    return read


def test_the_storage_modules_read_only_where_things_are() -> None:
    read = {
        str(path.relative_to(PACKAGE)): _settings_read(path) - DAL_SETTINGS
        for path in (PACKAGE / "dal").rglob("*.py")
    }
    # TableName itself: it reads the setting its users name (checked above, at each TableName(...))
    read["dal/aws/items.py"].discard("get_settings() kept whole")
    assert {module: extra for module, extra in read.items() if extra} == {}
    assert "audit_retention_days" in _settings_read(
        PACKAGE / "dal/audit.py"
    )  # the check reads what it should
