"""Typed settings, read from the environment once per cold start."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chatvault import bounds


class Settings(BaseModel):
    """Every environment variable the functions read, validated at cold start."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    uploads_bucket: str = Field(default="", alias="UPLOADS_BUCKET")
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=1)
    limits_table: str = Field(alias="LIMITS_TABLE", min_length=1)
    audit_retention_days: int = Field(default=400, alias="AUDIT_RETENTION_DAYS", ge=1, le=3650)
    create_limit_per_minute: int = Field(default=10, alias="CREATE_LIMIT_PER_MINUTE", ge=1)
    upload_limit_per_minute: int = Field(default=10, alias="UPLOAD_LIMIT_PER_MINUTE", ge=1)
    # Salt of the client fingerprints (salted hashes of IP addresses or JWT subjects). The template
    # passes the stack id: stable per deployment, different between deployments.
    client_hash_salt: str = Field(default="chatvault-local", alias="CLIENT_HASH_SALT", min_length=1)
    auth_mode: Literal["anonymous", "jwt"] = Field(default="anonymous", alias="AUTH_MODE")
    retention_hours: int = Field(default=720, alias="RETENTION_HOURS", ge=1, le=24 * 365 * 10)
    # 65,536 characters of 4-byte UTF-8 still fit a DynamoDB item (400 KB) with room for metadata.
    max_message_chars: int = Field(default=32768, alias="MAX_MESSAGE_CHARS", ge=1, le=65_536)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, alias="MAX_UPLOAD_BYTES", ge=1, le=5 * 1024**3)
    delete_workers: int = Field(default=8, alias="DELETE_WORKERS", ge=1, le=32)
    upload_url_seconds: int = Field(default=300, alias="UPLOAD_URL_SECONDS", ge=30, le=3600)
    orphan_min_age_minutes: int = Field(default=30, alias="ORPHAN_MIN_AGE_MINUTES", ge=0)
    dry_run: bool = Field(default=False, alias="DRY_RUN")

    @property
    def retention_seconds(self) -> int:
        return self.retention_hours * 3600

    @property
    def max_body_bytes(self) -> int:
        """Room for the largest valid body (the longest message with its metadata at every limit) even
        if every character arrives as a JSON escape pair; anything larger is 413."""
        text = self.max_message_chars + bounds.MESSAGE_METADATA_CHARS
        return bounds.JSON_STRUCTURE_BYTES + bounds.JSON_BYTES_PER_CHAR * text


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process; cached, so a bad variable fails the cold start, not a request."""
    return Settings.model_validate(dict(os.environ))
