"""What a storage failure becomes: a request that got no answer (a read or connection timeout that
outlasted botocore's retries) is 503 like throttling, never a 500 from reading its missing response."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from pynamodb.exceptions import QueryError

from chatvault.core.errors import StorageUnavailableError
from chatvault.dal.aws.retry import is_transient, storage_errors


def _timeout() -> QueryError:
    cause = ReadTimeoutError(endpoint_url="http://dynamodb")
    cause.response = None  # type: ignore[attr-defined]  # as urllib3's timeout leaves it
    return QueryError("Failed to query items", cause=cause)


def test_a_timed_out_query_is_transient_and_a_refused_one_is_not() -> None:
    assert is_transient(_timeout())
    refused = ClientError({"Error": {"Code": "ValidationException", "Message": "no"}}, "Query")
    assert not is_transient(QueryError("Failed to query items", cause=refused))


def test_a_timed_out_page_of_a_generator_is_storage_unavailable() -> None:
    @storage_errors
    def pages() -> object:
        yield 1
        raise _timeout()

    with pytest.raises(StorageUnavailableError):
        list(pages())  # type: ignore[call-overload]
