"""The one place that reaches PynamoDB's connections.

PynamoDB's public API offers no way to the botocore client behind a model, and two things need it:
the deadline checks (deadline.py), which must be registered on every client that sends requests, and
TransactWrite, which takes a connection. `of(model)` is that way, through PynamoDB's `_get_connection()`.

Each model's connection, and its botocore client (about 0.1 s of a cold start), is created on first
use, so a function only pays for the models it uses. The item models of the sessions table share
ChatItem's connection, because `of(ChatItem)` runs before any storage call (dal/aws/retry.py,
storage_errors); the audit and limits tables' models have their own."""

from __future__ import annotations

from pynamodb.connection import Connection
from pynamodb.models import Model

from chatvault.core import deadline, snapshot


def of(model: type[Model]) -> Connection:
    """The model's connection, with the deadline checks registered on its client."""
    connection = model._get_connection().connection
    deadline.guard(connection.client)
    return connection


def shared(model: type[Model]) -> Connection:
    """The connection of a model of another table that the sessions table's functions read on almost
    every request (the conversation keys), on the sessions table's client: the same settings
    (TableMeta), the deadline checks already registered, and no client of its own to create (about
    0.1 s of a cold start)."""
    from chatvault.dal.aws.items import ChatItem

    connection = model._get_connection().connection
    if connection._client is None:  # PynamoDB creates it on first use; it is this one
        connection._client = of(ChatItem).client
    return connection


def _prime() -> None:
    from chatvault.dal.aws.items import ChatItem

    of(ChatItem)


snapshot.prime(_prime)  # under SnapStart, the sessions table's client is in the snapshot
