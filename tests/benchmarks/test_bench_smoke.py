"""A smoke run of `make bench` (small sizes, no LangChain unless its venv exists): the benchmark code
keeps working, and the cost properties it reports hold. No timing is asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.report import ONE_ROUND_TRIP

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "report.md").read_text().startswith("# Benchmark report")
    return json.loads((out / "report.json").read_text())


def test_every_single_item_operation_is_one_round_trip(report: dict) -> None:
    ops = report["per_operation"]
    for name in (*ONE_ROUND_TRIP, "upload"):
        assert ops[name]["round_trips"]["max"] == 1, name


def test_an_append_costs_the_same_write_units_whatever_the_session_holds(report: dict) -> None:
    """4 write units for a 500-character message, 6 with a message_id, with or without a title and
    metadata at their limits: the session item the append rewrites stays small."""
    units = report["append_units"]
    assert len(units) == 4
    for name, figures in units.items():
        assert figures["write_units"]["max"] <= (6 if name.endswith("with message_id") else 4), name
        assert figures["round_trips"]["max"] == 1, name


def test_a_chat_exchange_is_two_round_trips_and_at_most_ten_write_units(report: dict) -> None:
    chat = report["chat"]
    assert chat["round_trips"]["max"] == 2
    assert chat["requests"]["max"] == 3  # two transactions and the history's Query beside the first
    assert chat["write_units"]["max"] <= 10
    assert chat["own_ms"]["runs"] >= 10


def test_a_streamed_exchange_writes_the_reply_once(report: dict) -> None:
    streamed = report["chat_stream"]
    assert streamed["write_units"]["max"] <= 10  # as the JSON form: not a write per delta
    assert streamed["requests"]["max"] == 3
    assert streamed["first_delta_added_ms"]["runs"] >= 10


def test_append_bytes_do_not_grow_with_the_history(report: dict) -> None:
    assert report["append_vs_history"]["bytes_ratio_largest_to_smallest"] <= 1.1


def test_delete_and_sweep_batch_their_calls(report: dict) -> None:
    (delete,) = report["panic_delete"].values()
    assert delete["calls"]["max"] <= 15  # 100 messages and 10 files: batched, not one call each
    for sweep in report["sweep"].values():
        deletes = dict(sweep["by_operation"])["DeleteObjects"]
        assert deletes == -(-sweep["objects"] // 1000)  # full calls of 1,000 keys, even for small folders
        assert sweep["calls"]["max"] <= sweep["target_without_constant"] + 10 + 1  # + the exports' listing


def test_every_handler_is_measured(report: dict) -> None:
    cold = report["cold_start"]
    assert cold["import_boto3_ms"]["median"] > 0
    assert len(cold["handlers"]) >= 11
    for name, figures in cold["handlers"].items():
        assert figures["first_invocation_ms"]["runs"] == figures["import_ms"]["runs"] >= 2, name
        assert figures["peak_rss_mb"]["median"] > 20, name
    assert set(cold["layer_bytecode"]) == {"without_bytecode_ms", "with_bytecode_ms"}
    assert list(cold["stack"]) == [
        "botocore + PynamoDB",
        "+ pydantic",
        "+ Powertools logger, metrics, event handler",
    ]


def test_snapstart_moves_the_clients_into_the_snapshot(report: dict) -> None:
    """With the before-snapshot hooks run, the first invocation of a function that uses DynamoDB
    no longer creates its client, so it does less than without them."""
    snapstart = report["cold_start"]["snapstart"]
    assert set(snapstart) == set(report["cold_start"]["handlers"])
    for name in ("GetSessionFunction", "AppendMessageFunction", "DeleteSessionFunction"):
        after = snapstart[name]["first_invocation_after_restore_ms"]["median"]
        without = report["cold_start"]["handlers"][name]["first_invocation_ms"]["median"]
        assert after < without, name
        assert snapstart[name]["init_in_snapshot_ms"]["median"] > 0


def test_the_export_reads_a_page_per_query_and_erase_all_a_few_calls_a_session(report: dict) -> None:
    """The export: the session and profile, a Query per page of 250 messages, the uploads'
    Query, the audit entry; never a scan. Erase-all: the owner index, then per session the panic
    button's calls (mark with the key's delete, partition Query, batches, both folders listed,
    files, removal), two of them transactions."""
    for figures in report["export"].values():
        by_op = dict(figures["by_operation"])
        assert "Scan" not in by_op
        assert by_op["Query"] <= -(-figures["messages"] // 250) + 1
        assert figures["calls"]["max"] <= by_op["Query"] + 3
    for figures in report["erase_all"].values():
        assert figures["calls"]["max"] <= 7 * figures["sessions"] + 1
        assert dict(figures["by_operation"])["TransactWriteItems"] == 2 * figures["sessions"]


def test_the_message_events_read_once_and_send_ten_to_a_request(report: dict) -> None:
    """A batch of n new messages: one strongly consistent BatchGetItem (a read unit for each
    500-character message) and ceil(n/10) SendMessageBatch, one after the other; the appends that
    wrote them sent nothing to SQS."""
    events = report["message_events"]
    assert events["append_sqs_requests"] == 0
    for n in (1, 10, 100):
        figures = events[str(n)]
        sends = -(-n // 10)
        assert figures["dynamodb_requests"]["max"] == 1, n
        assert figures["sqs_requests"]["min"] == figures["sqs_requests"]["max"] == sends, n
        assert figures["round_trips"]["max"] == 1 + sends, n
        assert figures["read_units"]["min"] > 0, n
        assert figures["read_units"]["max"] == n, n  # a read unit per message of under 4 KB
        assert dict(figures["by_operation"]) == {"BatchGetItem": 1, "SendMessageBatch": sends}, n
