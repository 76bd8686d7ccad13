from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.local_stack import LocalStack, local_stack

JWT_OVERRIDES = "AuthMode=jwt JwtIssuer=https://issuer.test JwtAudience=chatvault"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """`make dev` in anonymous mode (the default)."""
    with local_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
def jwt_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """`make dev` with PARAMETER_OVERRIDES selecting jwt mode."""
    with local_stack(tmp_path_factory.mktemp("jwt"), JWT_OVERRIDES) as running:
        yield running
