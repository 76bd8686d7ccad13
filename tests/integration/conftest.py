from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.local_stack import LocalStack, local_stack

# Every test of a session talks from 127.0.0.1: lift the per-client limits, except where they are tested.
UNLIMITED = "CreateSessionRateLimit=100000 UploadRateLimit=100000 AppendRateLimit=60000"
JWT_OVERRIDES = f"AuthMode=jwt JwtIssuer=https://issuer.test JwtAudience=chatvault {UNLIMITED}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """`make dev` in anonymous mode (the default)."""
    with local_stack(tmp_path_factory.mktemp("stack"), UNLIMITED) as running:
        yield running


@pytest.fixture(scope="session")
def jwt_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """`make dev` with PARAMETER_OVERRIDES selecting jwt mode."""
    with local_stack(tmp_path_factory.mktemp("jwt"), JWT_OVERRIDES) as running:
        yield running


@pytest.fixture(scope="session")
def limited_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """`make dev` exactly as a newcomer runs it: default parameters, default limits."""
    with local_stack(tmp_path_factory.mktemp("limited")) as running:
        yield running


@pytest.fixture(scope="session")
def probed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Default limits, for one test that counts a single client's attempts and their audit trace
    (every request comes from 127.0.0.1: a stack shared with another limited test would mix counts)."""
    with local_stack(tmp_path_factory.mktemp("probed")) as running:
        yield running


@pytest.fixture(scope="session")
def max_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """`make dev` with every size parameter at its largest allowed value."""
    with local_stack(tmp_path_factory.mktemp("max"), f"MaxMessageChars=65536 {UNLIMITED}") as running:
        yield running


@pytest.fixture(scope="session")
def bot_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """`make dev BOT=echo`: the example bot answers the message events (the chat routes off). A failed
    event comes back after 1 s (BOT_RETRY_SECONDS, local only) rather than the queue's 60 s."""
    env = {"BOT": "echo", "BOT_RETRY_SECONDS": "1"}
    with local_stack(tmp_path_factory.mktemp("bot"), UNLIMITED, env=env) as running:
        yield running
