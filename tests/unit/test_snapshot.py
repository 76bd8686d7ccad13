"""SnapStart: what runs before the snapshot, and nothing unique created at import."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import snapshot_restore_py

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers/common/chatvault"


@pytest.mark.usefixtures("aws")
def test_the_hooks_put_guarded_clients_in_the_snapshot() -> None:
    """Importing the data layer registers the clients' creation; running the hooks (as Lambda does
    before it snapshots) creates them, with the deadline checks, and reads no secret."""
    for module in ("chatvault.dal.messages", "chatvault.dal.uploads", "chatvault.dal.secret"):
        importlib.import_module(module)
    from chatvault.dal import secret
    from chatvault.dal.aws import connection
    from chatvault.dal.aws.clients import client
    from chatvault.dal.aws.items import ChatItem

    hooks = snapshot_restore_py.get_before_snapshot()
    assert len(hooks) >= 3
    secret._master_key.cache_clear()
    for hook, args, kwargs in reversed(hooks):  # Lambda runs them in reverse order of registration
        hook(*args, **kwargs)
    for primed in (connection.of(ChatItem).client, client("s3"), client("secretsmanager")):
        assert primed._deadline_guarded
    assert secret._master_key.cache_info().currsize == 0  # the secret is read in an invocation


def _module_random_calls(path: Path) -> list[str]:
    """Calls of the `random` module's shared generator (seeded once, at import)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "random"
            and node.func.attr != "SystemRandom"
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} random.{node.func.attr}")
    return found


def test_no_random_draw_comes_from_a_generator_seeded_at_import() -> None:
    """Instances restored from one snapshot share the memory of its init: a generator seeded at
    import would draw the same numbers in each. Jitter uses the OS (random.SystemRandom); ids and
    tokens come from uuid4 and secrets, which read the OS at call time."""
    sources = [*LAYER.rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    assert sources
    assert [call for path in sources for call in _module_random_calls(path)] == []
