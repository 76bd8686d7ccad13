"""Refusals in the audit table: one item per client, action, event and minute, with a count that only
grows (dal/limits.count_refusal, dal/audit.record_refusal), against in-process moto."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from chatvault.core import clock
from chatvault.dal import audit, limits
from chatvault.models.domain import AuditEntry, RateCharge

pytestmark = pytest.mark.usefixtures("aws")


def _charge(at_second: int, minutes_later: int = 0) -> RateCharge:
    at = clock.now().replace(second=at_second) + timedelta(minutes=minutes_later)
    return RateCharge(action="create_session", client="fp-1", at=at, per_minute=10)


def _refused(charge: RateCharge) -> AuditEntry:
    return AuditEntry(
        event="rate_limited", at=charge.at, actor=charge.client, details={"action": charge.action}
    )


def _items() -> list[dict]:
    return boto3.client("dynamodb").scan(TableName="chatvault-local-AuditTable")["Items"]


def test_refusals_of_a_minute_are_counted_on_one_item() -> None:
    for second in (1, 20, 40):
        charge = _charge(second)
        audit.record_refusal(_refused(charge), limits.count_refusal(charge, "rate_limited"))

    (item,) = _items()
    assert item["times"] == {"N": "3"}
    assert item["pk"] == {"S": "c#fp-1"}
    assert item["sk"]["S"].endswith(":00.000Z#rate_limited#create_session")
    assert item["details"] == {"M": {"action": {"S": "create_session"}}}


def test_a_late_smaller_count_does_not_replace_a_larger_one() -> None:
    charge = _charge(5)
    audit.record_refusal(_refused(charge), 7)
    audit.record_refusal(_refused(charge), 6)
    (item,) = _items()
    assert item["times"] == {"N": "7"}


def test_each_event_action_and_minute_has_its_own_count() -> None:
    first, next_minute = _charge(5), _charge(5, minutes_later=1)
    upload = first.model_copy(update={"action": "create_upload"})
    assert [limits.count_refusal(first, "rate_limited") for _ in range(2)] == [1, 2]
    assert limits.count_refusal(first, "session_exists") == 1
    assert limits.count_refusal(upload, "rate_limited") == 1
    assert limits.count_refusal(next_minute, "rate_limited") == 1
    # the refusal count does not touch the charge's own counter
    assert limits.charge_alone(first)
    (counter,) = [
        i
        for i in boto3.client("dynamodb").scan(TableName="chatvault-local-LimitsTable")["Items"]
        if i["pk"]["S"] == f"create_session#fp-1#{first.window}"
    ]
    assert (counter["n"], counter["rate_limited"], counter["session_exists"]) == (
        {"N": "1"},
        {"N": "2"},
        {"N": "1"},
    )
