"""Transactions read their refusals by name: the order `Transaction` assumes for the reasons is the
order DynamoDB answers them in, whatever order the items were added."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chatvault.dal.aws.items import StoredKey
from chatvault.dal.aws.transaction import Refused, Transaction
from chatvault.dal.limits import LimitItem

pytestmark = pytest.mark.usefixtures("aws")


def _transaction(pk: str) -> Transaction:
    """Four items added out of send order: an update, two puts, a delete; each has a condition that
    the test can make fail on its own."""
    tx = Transaction()
    tx.update(
        "counter", LimitItem(f"counter#{pk}"), [LimitItem.n.add(1)], condition=LimitItem.n.does_not_exist()
    )
    tx.save("first", StoredKey(pk, "first"), condition=StoredKey.pk.does_not_exist(), return_values="ALL_OLD")
    tx.delete("gone", StoredKey(pk, "gone"), condition=StoredKey.pk.does_not_exist())
    tx.save("second", StoredKey(pk, "second"), condition=StoredKey.pk.does_not_exist())
    return tx


def test_the_names_are_in_the_order_dynamodb_receives_the_items() -> None:
    assert _transaction("x").names == ["gone", "first", "second", "counter"]


@pytest.mark.parametrize("failing", ["counter", "first", "gone", "second"])
def test_a_refusal_names_the_item_that_failed_its_condition(failing: str) -> None:
    pk = str(uuid.uuid4())
    if failing == "counter":
        LimitItem(f"counter#{pk}", n=1, expires_at=datetime.now(UTC) + timedelta(minutes=3)).save()
    else:
        StoredKey(pk, failing).save()

    with pytest.raises(Refused) as refused:
        _transaction(pk).commit()

    assert [name for name in refused.value.reasons if refused.value.failed(name)] == [failing]
    old = refused.value.old("first", StoredKey)
    assert (old is not None) == (failing == "first")  # ALL_OLD: the item as it was
    # nothing was written
    stored = {item.sk for item in StoredKey.query(pk)}
    assert stored == ({failing} if failing != "counter" else set())


def test_an_accepted_transaction_writes_every_item() -> None:
    pk = str(uuid.uuid4())
    _transaction(pk).commit()
    assert {item.sk for item in StoredKey.query(pk)} == {"first", "second"}
    assert LimitItem.get(f"counter#{pk}").n == 1


def test_two_items_may_not_share_a_name() -> None:
    tx = Transaction()
    tx.save("a", StoredKey("p", "1"))
    with pytest.raises(ValueError, match="two items named"):
        tx.save("a", StoredKey("p", "2"))


@pytest.mark.parametrize("failing", ["first", "second"])
def test_committed_answers_false_for_an_expected_refusal_and_raises_for_another(failing: str) -> None:
    pk = str(uuid.uuid4())
    StoredKey(pk, failing).save()
    if failing == "first":
        assert _transaction(pk).committed("first", "counter") is False
    else:
        with pytest.raises(Refused):
            _transaction(pk).committed("first", "counter")
    assert _transaction(str(uuid.uuid4())).committed("first") is True


def test_written_answers_a_refused_single_write_and_raises_a_fault() -> None:
    from pynamodb.exceptions import UpdateError

    from chatvault.dal.aws.retry import written

    pk = str(uuid.uuid4())
    item = StoredKey(pk, "one")
    assert written(lambda: item.save(condition=StoredKey.pk.does_not_exist())) is True
    assert written(lambda: item.save(condition=StoredKey.pk.does_not_exist())) is False  # refused

    def fault() -> None:
        raise UpdateError("throttled")  # no ConditionalCheckFailedException behind it

    with pytest.raises(UpdateError):
        written(fault)
