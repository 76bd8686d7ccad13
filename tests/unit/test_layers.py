"""Imports flow one way: functions -> http -> logic -> dal -> core, with models usable by all. Inside
logic, the rules (logic/rules) serve the use cases and never import one; inside dal, the AWS plumbing
(dal/aws) serves the storage modules and never imports one. The model adapter (llm) sits beside dal:
the use cases call it, and it needs only core and models."""

from __future__ import annotations

import ast
import re
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


# ---- the README's Layout and "Adding a route" match the tree ------------------------------------------

README = (ROOT / "README.md").read_text()


def _layout_entries() -> dict[str, str]:
    """The Layout block's entries: each path it names (a line's first word) and its description."""
    block = README.split("## Layout\n", 1)[1].split("```\n", 2)[1]
    entries: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        word, _, rest = line.strip().partition(" ")
        if line.startswith(" " * 10) and current:  # a description's continuation
            entries[current] += " " + line.strip()
        else:
            current = word
            entries[current] = rest
    return entries


def test_the_layout_names_every_room_and_module() -> None:
    entries = _layout_entries()
    rooms = {p for p in entries if p.startswith("chatvault/")}
    assert rooms == {
        f"chatvault/{'/'.join(p.relative_to(PACKAGE).parts)}/"
        for p in PACKAGE.rglob("*")
        if p.is_dir() and p.name != "__pycache__"
    }
    for room in rooms - {"chatvault/logic/", "chatvault/models/"}:
        modules = {p.stem for p in (PACKAGE.parent / room).glob("*.py")} - {"__init__"}
        missing = {m for m in modules if not re.search(rf"\b{m}\b", entries[room])}
        assert not missing, f"{room} modules the README does not name: {missing}"
    models = {p.name for p in (PACKAGE / "models").glob("*.py")} - {"__init__.py"}
    assert all(name in entries["chatvault/models/"] for name in models)
    for path in (p for p in entries if "/" in p and not p.startswith("chatvault/")):
        concrete = path.rstrip(",").replace("<use_case>", "get_session")
        assert (ROOT / concrete).exists(), f"the Layout names {path}, which is not in the tree"


def test_each_use_case_is_named_as_its_function() -> None:
    """logic/: one module per use case, named as its function; the rest are the operator command's,
    which the Layout names."""
    functions = {p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").is_file()}
    use_cases = {p.stem for p in (PACKAGE / "logic").glob("*.py")} - {"__init__"}
    http_only = {"get_api_document", "route_fallback"}  # their modules are in http/
    assert functions - http_only <= use_cases
    operator = use_cases - functions
    assert operator == {"seal_legacy", "check_restore", "copy_restore", "erase_by_operator"}
    assert all(name in _layout_entries()["chatvault/logic/"] for name in operator)


def test_adding_a_route_names_real_places() -> None:
    section = README.split("### Adding a route\n", 1)[1].split("\n## ", 1)[0]
    paths = set(re.findall(r"`([\w./<>-]+/[\w./<>-]*)`", section))
    assert paths, "the section names no files"
    for path in paths:
        concrete = path.replace("<use_case>", "get_session")
        candidates = [ROOT / concrete, ROOT / "clients/js" / concrete, PACKAGE.parent / concrete]
        assert any(c.exists() for c in candidates), f"Adding a route names {path}, which is not in the tree"
    assert "Fn::ForEach::PerFunction" in section
    assert "Fn::ForEach::PerFunction" in (ROOT / "template.yaml").read_text()
    assert "tests.infrastructure.test_translation" in section
    assert (ROOT / "tests/infrastructure/test_translation.py").is_file()


# The errors a storage module may raise (dal/__init__.py): every other refusal is an answer
DAL_RAISES = {
    "StorageUnavailableError",
    "RateLimitedError",
    "InvalidCursorError",
    "UnauthenticatedError",
    "Refused",  # inside dal/: Transaction.committed and the modules' own catches turn it into answers
    "KeyGone",  # inside dal/: a read's KeySoon, answered as a missing session by the same module
    "ValueError",  # a programming error (a transaction item added twice)
}


def test_the_storage_modules_answer_refusals_rather_than_raise_them() -> None:
    raised: dict[str, set[str]] = {}
    for path in (PACKAGE / "dal").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                name = getattr(target, "id", None) or getattr(target, "attr", None)
                if name is not None and name[0].isupper():
                    raised.setdefault(str(path.relative_to(PACKAGE)), set()).add(name)
    assert {m: names - DAL_RAISES for m, names in raised.items() if names - DAL_RAISES} == {}
    assert "RateLimitedError" in raised["dal/sessions.py"]  # the check sees what it should
