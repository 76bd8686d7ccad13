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


def test_sealing_keeps_the_append_units_and_a_warm_function_adds_nothing(report: dict) -> None:
    """Section 12, the issue's bars for a key per conversation: an append's write units are what they
    were (4, or 6 with a message_id: keyed as legacy, key held or not, and as without keys); a warm
    function serving a keyed session whose key it holds sends no request for the key or the secret
    and adds no round trip, whatever the operation (a get is its one BatchGetItem, as without keys);
    a function that does not hold the key adds at most one round trip, and a read only the key's read
    beside its own (a page's keys: one BatchGetItem)."""
    ops = report["sealing"]["operations"]
    for op, units in (("append", 4), ("append with message_id", 6)):
        for variant in ("plaintext", "legacy", "keyed_warm", "keyed_cold", "keyed_cold_start"):
            figures = ops[op][variant]["write_units"]
            assert figures["min"] == figures["max"] == units, (op, variant)
    for op, per in ops.items():
        warm = per["keyed_warm"]
        assert warm["key_requests"]["max"] == warm["secret_reads"]["max"] == 0, op
        assert warm["added_round_trips"]["max"] == 0, op
        assert per["keyed_cold"]["added_round_trips"]["max"] <= 1, op
    get = ops["get session"]
    assert get["keyed_warm"]["requests"]["max"] == get["plaintext"]["requests"]["max"] == 1
    assert dict(get["keyed_warm"]["calls"]) == {"BatchGetItem": 1}
    reads = ("get session", "list messages (first page)", "list messages (newest first)", "export")
    for op in (*reads, "list sessions (a page)"):
        cold, base = ops[op]["keyed_cold"], ops[op]["plaintext"]
        assert cold["key_requests"]["min"] == cold["key_requests"]["max"] == 1, op
        assert cold["requests"]["max"] == base["requests"]["max"] + 1, op


def test_sealing_calls_no_kms_and_reads_the_secret_once_per_cold_start(report: dict) -> None:
    """The data keys are wrapped under a key derived from the deployment's secret: no KMS call in any
    request of the section (every botocore client's requests counted), and the secret read once by a
    new function instance however many keys it then reads, never by a warm one."""
    sealing = report["sealing"]
    assert sealing["aws_calls"]["requests_measured"] > 0
    assert sealing["aws_calls"]["kms"] == 0
    assert sealing["secret_after_cold_start"] == {"requests": 10, "secret_reads": 1}
    for op, per in sealing["operations"].items():
        assert per["keyed_cold_start"]["secret_reads"]["max"] == 1, op
        assert per["keyed_cold"]["secret_reads"]["max"] == 0, op


def test_a_sealed_value_stores_its_plaintext_and_the_seal(report: dict) -> None:
    """A 500-character message item grows by seal.OVERHEAD, give or take its attribute's name
    (`sealed` for `content`) and the newline before the content (after the metadata, none here); the
    message_id marker not at all."""
    sizes = report["sealing"]["item_sizes"]
    overhead = sizes["seal_overhead_bytes"]
    items = sizes["items"]
    assert items["message (500 characters)"]["added_bytes"] == overhead + len("sealed") - len("content") + 1
    assert items["message_id marker"]["added_bytes"] == 0
    assert items["key item (keys table)"]["keyed_bytes"] > 32 + overhead  # the wrapped key
    for label, item in items.items():
        assert item["keyed_bytes"] < 1024, label  # under a write unit, as before


def test_an_append_moves_the_key_ttl_in_its_own_transaction(report: dict) -> None:
    """About once an hour of a session's activity an append moves its key's TTL: inside its one
    transaction (the function holding the key knows its TTL), 2 write units on the keys table, no
    request of its own."""
    moved = report["sealing"]["operations"]["append moving the key's TTL (hourly)"]["keyed_warm"]
    assert moved["key_requests"]["max"] == 0
    assert moved["keys_write_units"]["min"] == moved["keys_write_units"]["max"] == 2
    assert dict(moved["calls"]) == {"TransactWriteItems": 1}
