from __future__ import annotations

import pytest
from pydantic import ValidationError

from chatvault.core.settings import Settings, get_settings


def test_settings_come_from_the_environment(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("RETENTION_HOURS", "2")
    settings_env.setenv("AUTH_MODE", "jwt")
    settings = get_settings()
    assert settings.retention_seconds == 7200
    assert settings.auth_mode == "jwt"
    assert settings.max_message_chars == 32768


@pytest.mark.parametrize(
    "env",
    [
        {"AUTH_MODE": "open"},
        {"RETENTION_HOURS": "0"},
        {"RETENTION_HOURS": "soon"},
        {"TABLE_NAME": ""},
        {"AUTH_MODE": "both", "JWT_AUDIENCE": "client"},  # both mode verifies tokens: it needs an issuer
        {"CLIENT_ROLES": "user,wizard"},
        {"CLIENT_ROLES": ""},
    ],
)
def test_bad_settings_fail_at_cold_start(env: dict[str, str]) -> None:
    valid = {"TABLE_NAME": "t", "AUDIT_TABLE": "a", "LIMITS_TABLE": "l"}
    Settings.model_validate(valid)  # so that only `env` can make it fail
    with pytest.raises(ValidationError):
        Settings.model_validate({**valid, **env})


def test_both_mode_with_its_issuer_and_wider_client_roles_are_settings() -> None:
    settings = Settings.model_validate(
        {
            "TABLE_NAME": "t",
            "AUDIT_TABLE": "a",
            "LIMITS_TABLE": "l",
            "AUTH_MODE": "both",
            "JWT_ISSUER": "https://issuer.example",
            "JWT_AUDIENCE": "client",
            "CLIENT_ROLES": "user, assistant",
        }
    )
    assert settings.accounts
    assert settings.tokens
    assert settings.client_roles == ("user", "assistant")


def test_the_tracer_is_real_only_when_tracing_is_on(settings_env: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools import Tracer

    from chatvault.core import observability

    settings_env.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    off = observability._tracer()
    assert not isinstance(off, Tracer)
    handler = object()
    assert off.capture_lambda_handler(handler) is handler  # type: ignore[arg-type]
    settings_env.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    assert isinstance(observability._tracer(), Tracer)
