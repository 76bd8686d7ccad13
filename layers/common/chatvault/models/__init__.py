"""Pydantic models: `api` is the HTTP contract, `domain` what the logic and dal exchange."""
