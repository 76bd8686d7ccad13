"""report.json -> report.md, with each target marked met or missed (and by how much)."""

from __future__ import annotations

import math
from typing import Any

IMPORT_RATIO_TARGET = 1.3
WARM_CPU_TARGET_MS = 2.0
BYTES_RATIO_TARGET = 1.1
DELETE_TIMEOUT_S = 28  # every function behind the API (template.yaml: under API Gateway's 30 s)
SWEEP_CONSTANT = 10
# the operations held to one round trip (requests sent concurrently share one)
ONE_ROUND_TRIP = (
    "create",
    "get",
    "patch",
    "append",
    "list first page (asc)",
    "list first page (desc)",
    "list next page",
)
# write units of one append of a 500-character message, whatever the session's title and metadata
APPEND_UNITS_TARGET = {"without message_id": 4, "with message_id": 6}
CHAT_ROUND_TRIPS = 2  # besides the model call
CHAT_WRITE_UNITS = 10  # the user message with its message_id, the reply, the reply guard
FIRST_DELTA_TARGET_MS = 50
CONTENT_CHARS_NOTE = "500-character"
# DynamoDB on-demand, Standard table class, us-east-1 (USD per million request units)
PRICE_WRITE_PER_MILLION = 0.625
PRICE_READ_PER_MILLION = 0.125
# the reference workloads of the cost estimate: conversations a month, of these many messages
CONVERSATIONS = 1_000_000
# Lambda SnapStart for Python, from the Lambda pricing page's example (us-east-1): the snapshot's
# cache, per GB-second of each published version's memory while the version exists, and each restore
SNAPSTART_CACHE_PER_GB_SECOND = 0.0000015046
SNAPSTART_RESTORE_PER_GB = 0.0001397998
SECONDS_A_MONTH = 30 * 24 * 3600
MESSAGES_PER_CONVERSATION = (20, 200)
# the message events: SendMessageBatch takes at most 10 messages (dal/message_events.py SEND_BATCH)
SEND_BATCH = 10


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _m(value: dict[str, Any], unit: str = "") -> str:
    return f"{value['median']}{unit} ({value['min']}..{value['max']}, n={value['runs']})"


def _calls_table(subject: str, rows: dict[str, Any]) -> list[str]:
    lines = [f"| {subject} | calls | seconds | by operation |", "|---|---|---|---|"]
    for name, figures in rows.items():
        by_op = ", ".join(f"{op} × {n}" for op, n in figures["by_operation"])
        lines.append(f"| {name} | {_m(figures['calls'])} | {_m(figures['seconds'])} | {by_op} |")
    return lines


def _append_units(report: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"### Write units of one append ({report['content_chars']}-character message)",
        "",
        "The append's transaction writes the small session item (counters, position, preview, pace) "
        "and the message, and the marker of a client `message_id`; the title and metadata live in the "
        "profile, which an append does not rewrite (its TTL is refreshed about once a day of activity).",
        "",
        "| session | write units | round trips |",
        "|---|---|---|",
    ]
    for name, figures in report["append_units"].items():
        lines.append(f"| {name} | {_m(figures['write_units'])} | {_m(figures['round_trips'])} |")
    per_size = report["append_vs_history"].get("langchain", {}).get("per_size", {})
    if per_size:
        cells = ", ".join(
            f"{size} messages: ≈ {-(-figures['request_bytes']['median'] // 1024):.0f}"
            for size, figures in per_size.items()
        )
        lines += [
            "",
            f"LangChain's `DynamoDBChatMessageHistory`, same messages, in the same run: one PutItem of the "
            f"whole history per append, ≈ one write unit per KB of it ({cells}), plus a read of it.",
        ]
    return lines


def _langchain_bytes_per_message(report: dict[str, Any]) -> float | None:
    per_size = report["append_vs_history"].get("langchain", {}).get("per_size", {})
    sizes = sorted(int(s) for s in per_size)
    if len(sizes) < 2:
        return None
    low, high = per_size[str(sizes[0])], per_size[str(sizes[-1])]
    return float(high["request_bytes"]["median"] - low["request_bytes"]["median"]) / (sizes[-1] - sizes[0])


def _conversation_units(report: dict[str, Any], n: int) -> tuple[float, float]:
    """(write units, read units) of one conversation of n messages, from the measured units."""
    ops, units = report["per_operation"], report["append_units"]
    append = units["small session, with message_id"]["write_units"]["median"]
    reads = ops["create"]["read_units"]["median"] + n * ops["list first page (desc)"]["read_units"]["median"]
    writes = (
        ops["create"]["write_units"]["median"]
        + n * append
        + ops["delete (3 messages)"]["write_units"]["median"]
    )
    # the delete measured erases 3 messages and their markers; each further one is a unit more
    return writes + 2 * (n - 3), reads


def _langchain_units(per_message: float, n: int) -> tuple[float, float]:
    """Each append reads the whole history and writes it back; each page read reads it."""
    writes = sum(max(1, -(-k * per_message // 1024)) for k in range(1, n + 1))
    reads = sum(
        max(1, -(-(k - 1) * per_message // 4096)) + max(1, -(-k * per_message // 4096))
        for k in range(1, n + 1)
    )
    return writes, reads


def _dollars(writes: float, reads: float) -> float:
    return CONVERSATIONS * (writes * PRICE_WRITE_PER_MILLION + reads * PRICE_READ_PER_MILLION) / 1e6


def _snapstart(cold: dict[str, Any]) -> list[str]:
    """What the opt-in SnapStart parameter changes: the imports (and the clients the data layer's
    before-snapshot hooks create) move into the snapshot; a new instance restores it instead."""
    lines = [
        "",
        "### SnapStart (opt-in: `SnapStart=true`)",
        "",
        "With SnapStart, Lambda imports each published version once, runs the before-snapshot hooks "
        "(chatvault/core/snapshot.py: they create the AWS clients, about 0.1 s each, but read no secret and "
        "open no connection) and snapshots the memory; a new instance restores the snapshot instead of "
        "importing. Measured here: the init that moves into the snapshot, and what the first invocation "
        "still does after a restore (first invocation without SnapStart for comparison). The restore "
        "itself happens inside Lambda and cannot be measured locally: Lambda reports it as `Restore "
        "Duration` in the REPORT log line.",
        "",
        "| function | init (into the snapshot) | first invocation, without | first invocation, after a restore |",
        "|---|---|---|---|",
    ]
    for name, figures in cold["snapstart"].items():
        without = cold["handlers"][name]
        lines.append(
            f"| {name} | {_m(figures['init_in_snapshot_ms'], ' ms')} | "
            f"{_m(without['first_invocation_ms'], ' ms')} | "
            f"{_m(figures['first_invocation_after_restore_ms'], ' ms')} |"
        )
    gb = sum(figures["memory_mb"] for figures in cold["snapstart"].values()) / 1024
    cache = gb * SECONDS_A_MONTH * SNAPSTART_CACHE_PER_GB_SECOND
    restore = SNAPSTART_RESTORE_PER_GB  # per GB restored
    lines += [
        "",
        f"What it costs (the pricing page's rates, us-east-1): the cache of one published version of "
        f"all {len(cold['snapstart'])} functions ({gb:g} GB of memory) is ${cache:,.2f} a month, for each "
        f'version that exists (old versions keep costing until deleted: README, "SnapStart"), and '
        f"each restore ${restore:.6f} per GB of the function's memory. The init is billed when Lambda "
        f"takes the snapshot (once per version, and again when it refreshes it) instead of on every "
        f"cold start.",
    ]
    return lines


def _monthly_cost(report: dict[str, Any]) -> list[str]:
    """Reference workloads priced at on-demand rates, from the measured units."""
    lines = [
        "",
        "### Monthly cost of a reference workload",
        "",
        f"{CONVERSATIONS:,} conversations a month, each: a create, n appends of "
        f"{report['content_chars']}-character messages with a `message_id`, after each append a read of "
        f"the newest page, and the panic button at the end. DynamoDB on-demand, us-east-1: "
        f"${PRICE_WRITE_PER_MILLION} per million write units, ${PRICE_READ_PER_MILLION} per million read "
        "units (storage, Lambda and API Gateway not included). LangChain's history reads and rewrites "
        "the whole history on each append and reads it for each page; it has no delete of files, no "
        "audit and no idempotency.",
        "",
        "| messages per conversation | | write units per conversation | read units per conversation | per month |",
        "|---|---|---|---|---|",
    ]
    per_message = _langchain_bytes_per_message(report)
    for n in MESSAGES_PER_CONVERSATION:
        writes, reads = _conversation_units(report, n)
        lines.append(f"| {n} | chatvault | {writes:.0f} | {reads:.0f} | ${_dollars(writes, reads):,.0f} |")
        if per_message is not None:
            lc_writes, lc_reads = _langchain_units(per_message, n)
            lines.append(
                f"| {n} | LangChain (≈ {per_message:.0f} bytes a message) | {lc_writes:.0f} | {lc_reads:.0f} | "
                f"${_dollars(lc_writes, lc_reads):,.0f} |"
            )
    return lines


def _within_one_call(what: str, figures: dict[str, Any], measured: str = "") -> str:
    """A target row: the work done within one Lambda call's time, with its calls (and what else it measured)."""
    seconds = figures["seconds"]["median"]
    return (
        f"| {what} within one Lambda call ({DELETE_TIMEOUT_S} s) | {figures['calls']['median']} calls, "
        f"{measured}{seconds} s | {_mark(seconds < DELETE_TIMEOUT_S)} |"
    )


def render(report: dict[str, Any]) -> str:
    lines = ["# Benchmark report", ""]
    lines.append(
        f"Generated by `make bench`{' (quick mode: small sizes)' if report['quick'] else ''} on "
        f"{report['machine']}, Python {report['python']}, against moto (in this process for the service, "
        "the same moto server for LangChain). Figures are medians with min..max over n runs. Times on "
        "moto are not AWS latencies; round trips, bytes and CPU are what carry over."
        + (
            ""
            if report.get("message_events_measured_alone") or "message_events" not in report
            else " The sessions table has its stream, as deployed; moto's copy of a table before each "
            "transaction shares the stream's records instead of copying them all, and they are dropped "
            "between sections (DynamoDB's writes do not pay for the stream: tests/benchmarks/run.py "
            "`_stream_as_on_aws`)."
        )
    )
    lines += ["", "## Targets", "", "| target | measured | |", "|---|---|---|"]

    cold = report["cold_start"]
    worst = max(cold["handlers"].items(), key=lambda kv: kv[1]["ratio_to_boto3"])
    floor_name, floor = list(cold["stack"].items())[-1]
    lines.append(
        f"| handler import ≤ {IMPORT_RATIO_TARGET} × `import boto3` | worst {worst[0]}: "
        f"{worst[1]['ratio_to_boto3']} × ({worst[1]['import_ms']['median']} ms vs "
        f"{cold['import_boto3_ms']['median']} ms); the libraries alone: {floor['ratio_to_boto3']} × | "
        f"{_mark(worst[1]['ratio_to_boto3'] <= IMPORT_RATIO_TARGET)} |"
    )
    ops = report["per_operation"]
    for name in ONE_ROUND_TRIP:
        trips, requests = ops[name]["round_trips"]["median"], ops[name]["requests"]["median"]
        concurrent = f" ({requests:.0f} requests, sent concurrently)" if requests > trips else ""
        lines.append(f"| {name}: 1 round trip | {trips}{concurrent} | {_mark(trips <= 1)} |")
    for name, figures in report["append_units"].items():
        limit = next(v for k, v in APPEND_UNITS_TARGET.items() if name.endswith(k))
        units = figures["write_units"]["max"]
        lines.append(
            f"| append write units ≤ {limit} ({name}) | {units} | {_mark(units <= limit and figures['round_trips']['max'] == 1)} |"
        )
    chat = report.get("chat")
    if chat:
        trips, units = chat["round_trips"]["max"], chat["write_units"]["max"]
        lines.append(
            f"| chat exchange ≤ {CHAT_ROUND_TRIPS} round trips besides the model | {trips} "
            f"({chat['requests']['median']:.0f} requests) | {_mark(trips <= CHAT_ROUND_TRIPS)} |"
        )
        lines.append(
            f"| chat exchange ≤ {CHAT_WRITE_UNITS} write units (user message with message_id, reply, guard) | "
            f"{units} | {_mark(units <= CHAT_WRITE_UNITS)} |"
        )
    streamed = report.get("chat_stream")
    if streamed:
        added = streamed["first_delta_added_ms"]
        lines.append(
            f"| streamed chat: the service's own time from the model's first token to the first delta ≤ "
            f"{FIRST_DELTA_TARGET_MS} ms (warm) | p50 {added['p50']} ms, p95 {added['p95']} ms | "
            f"{_mark(added['p95'] <= FIRST_DELTA_TARGET_MS)} |"
        )
        units = streamed["write_units"]["max"]
        lines.append(
            f"| streamed chat: the JSON form's write units (the reply written once, not per delta) | {units} | "
            f"{_mark(units <= CHAT_WRITE_UNITS)} |"
        )
    history = report["append_vs_history"]
    sizes = list(history["chatvault"])
    ratio = history["bytes_ratio_largest_to_smallest"]
    lines.append(
        f"| append bytes at {sizes[-1]} messages ≤ {BYTES_RATIO_TARGET} × at {sizes[0]} | {ratio} × | "
        f"{_mark(ratio <= BYTES_RATIO_TARGET)} |"
    )
    for name, figures in report["panic_delete"].items():
        lines.append(_within_one_call(f"delete ({name})", figures))
    for name, figures in report.get("export", {}).items():
        size = f"{figures['bytes']['median'] / 1e6:.1f} MB ({figures['form']}), "
        lines.append(_within_one_call(f"export of {name}", figures, size))
    for name, figures in report.get("erase_all", {}).items():
        lines.append(_within_one_call(f"erase-all of {name}", figures))
    events = report.get("message_events")
    if events:
        lines += _events_targets(report, events)
    if "sealing" in report:
        lines += _seal_targets(report["sealing"])
    sweeps = report["sweep"]
    sweep_name, sweep = next(iter(sweeps.items()))
    bound = sweep["target_without_constant"] + SWEEP_CONSTANT
    sweep_calls = sweep["calls"]["median"]
    lines.append(
        f"| sweep calls ≤ objects/1000 + prefixes/100 + deleted/1000 + c ({sweep_name}, "
        f"c = {SWEEP_CONSTANT}: ≤ {bound}) | {sweep_calls} | {_mark(sweep_calls <= bound)} |"
    )
    warm = report["warm_overhead"]
    worst_warm = max(warm.items(), key=lambda kv: kv[1]["cpu_ms"]["median"])
    lines.append(
        f"| warm overhead ≤ {WARM_CPU_TARGET_MS} ms median | worst {worst_warm[0]}: "
        f"{worst_warm[1]['cpu_ms']['median']} ms | {_mark(worst_warm[1]['cpu_ms']['median'] <= WARM_CPU_TARGET_MS)} |"
    )

    lines += [
        "",
        "Where a target is missed, why:",
        "",
        f"- **Handler import.** The libraries every HTTP handler stands on already take "
        f"{floor['ratio_to_boto3']} × `import boto3` ({floor['import_ms']['median']} ms, the {floor_name!r} "
        "row below): botocore with PynamoDB is about `import boto3` by itself, pydantic and Powertools' "
        "event handler (whose package imports all its resolvers, asyncio included) come on top. So no "
        "handler on the prescribed stack (Powertools' resolver with pydantic validation, PynamoDB) can "
        f"reach {IMPORT_RATIO_TARGET} ×; the handlers' own code adds the rest. What could go has gone: the "
        "X-Ray SDK (loaded by Powertools' Tracer even when disabled; now only with EnableTracing=true), the "
        "OpenAPI models (plain dictionaries at runtime) and the building of unused pydantic models "
        "(deferred). The two functions that skip the data layer come closest.",
        "- **Two requests, one round trip.** A page other than the first ascending one cannot reach the "
        "session item in its Query, so the session item is read with a GetItem sent concurrently; a PATCH "
        "reads the session concurrently with its transaction and lays what it wrote over what it read. "
        "A cursor that carried the authorization itself would save the GetItem but keep answering after "
        "the panic button, which the contract forbids.",
        "- **Sweep calls.** Beyond the target's terms it looks the orphans' sessions up a second time just "
        "before deleting (strongly consistent, 100 a call: up to another prefixes/100), as the sweep's "
        "contract requires, and writes one audit entry per deleted folder (25 a BatchWriteItem: deleted "
        "prefixes/25), as the audit trail requires. TransactWriteItems would take 100 entries a call "
        "(30 calls fewer here) but bills two write units per entry: about 1,000 write units more, "
        "against some 0.3 s of Lambda time saved. Each run also takes and gives back its lease (one "
        "sweep at a time) and records its report: three calls.",
    ]
    if worst_warm[1]["cpu_ms"]["median"] > WARM_CPU_TARGET_MS:
        cpu = worst_warm[1]["cpu_ms"]
        lines.append(
            f"- **Warm overhead.** CPU per request is `process_time` of this process, over {cpu['runs']} "
            f"requests: for {worst_warm[0]} from {cpu['min']} to {cpu['max']} ms for the same request on "
            "this shared machine, so the median moves with the machine's load from run to run (the "
            "decoding of a page of 50 itself takes about 1 ms: dal/history.py). The fastest runs are "
            "within the target."
        )
    if "sealing" in report:
        lines += _seal_misses(report["sealing"])
    lines += [
        "",
        "## 1. Cold start",
        "",
        f"Bare `import boto3`: {_m(cold['import_boto3_ms'], ' ms')}. Each run starts a fresh Python "
        "process per handler: it imports the handler module, then serves one invocation (the event in "
        "tests/events/) against moto; peak RSS is the process's high-water mark after it.",
        "",
        "| function | import | × boto3 | first invocation | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for name, figures in cold["handlers"].items():
        lines.append(
            f"| {name} | {_m(figures['import_ms'], ' ms')} | {figures['ratio_to_boto3']} | "
            f"{_m(figures['first_invocation_ms'], ' ms')} | {_m(figures['peak_rss_mb'], ' MB')} |"
        )
    lines += [
        "",
        "The libraries alone, imported the way the handlers import them:",
        "",
        "| imports | time | × boto3 |",
        "|---|---|---|",
    ]
    for layer, figures in cold["stack"].items():
        lines.append(f"| {layer} | {_m(figures['import_ms'], ' ms')} | {figures['ratio_to_boto3']} |")
    lines += [
        "",
        f"GetSessionFunction with tracing on (EnableTracing=true, Powertools Tracer and the X-Ray SDK): "
        f"{_m(cold['get_session_with_tracing_ms'], ' ms')}.",
        "",
        "GetSessionFunction's imports from a layer laid out as on Lambda (`/opt/python`, nothing else "
        "on the path), without bytecode as SAM's python3.13 build method ships it (Lambda cannot cache "
        f"bytecode in the read-only /opt: every cold start compiles): "
        f"{_m(cold['layer_bytecode']['without_bytecode_ms'], ' ms')}; with the bytecode "
        f"layers/common/Makefile compiles at build time: {_m(cold['layer_bytecode']['with_bytecode_ms'], ' ms')}.",
    ]

    lines += _snapstart(cold)
    lines += [
        "",
        "## 2. Per operation",
        "",
        "Capacity units are computed from the items each request names, as DynamoDB bills on-demand "
        "request units (tests/benchmarks/capacity.py): a write unit per KB of the item (an update counts "
        "the item it leaves), two inside a transaction; a read unit per 4 KB, strongly consistent. The "
        "session here has a short title and no metadata; the audit entry and rate-limit counter a "
        "create or upload writes are included.",
        "",
        "| operation | round trips | requests | request bytes | read units | write units | calls |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, figures in ops.items():
        calls = ", ".join(f"{op} × {n}" for op, n in figures["calls"])
        lines.append(
            f"| {name} | {_m(figures['round_trips'])} | {figures['requests']['median']:.0f} | "
            f"{_m(figures['request_bytes'])} | {figures['read_units']['median']} | "
            f"{figures['write_units']['median']} | {calls} |"
        )
    lines += _append_units(report)
    lines += _monthly_cost(report)

    lines += [
        "",
        f"## 3. Append cost against history length ({report['content_chars']}-character messages)",
        "",
        "| history | chatvault round trips | chatvault bytes | LangChain round trips | LangChain bytes |",
        "|---|---|---|---|---|",
    ]
    lc = history.get("langchain", {})
    lc_sizes = lc.get("per_size", {})
    all_sizes = sorted({int(s) for s in sizes} | {int(s) for s in lc_sizes})
    for size in all_sizes:
        ours = history["chatvault"].get(str(size))
        theirs = lc_sizes.get(str(size))
        ours_cells = f"{_m(ours['round_trips'])} | {_m(ours['request_bytes'])}" if ours else "– | –"
        longest = lc.get("longest_history")
        if theirs:
            their_cells = f"{_m(theirs['round_trips'])} | {_m(theirs['request_bytes'])}"
        elif longest is not None and size > longest["median"]:
            their_cells = f"fails (holds at most {longest['median']:.0f}) | –"
        else:
            their_cells = "– | –"
        lines.append(f"| {size} | {ours_cells} | {their_cells} |")
    lines += [
        "",
        f"Longest history: chatvault — {history['chatvault_longest_history']}; LangChain — "
        + (
            f"{_m(lc['longest_history'])} messages"
            if lc.get("longest_history")
            else lc.get("skipped", "not measured (quick mode)")
        )
        + (f" ({lc['failure']})" if lc.get("failure") else "")
        + ".",
    ]

    lines += [
        "",
        "## 4. Panic delete",
        "",
    ]
    lines += _calls_table("session", report["panic_delete"])

    lines += [
        "",
        "## 5. Orphan sweep",
        "",
        "Every folder orphaned (its session missing), the files a year old.",
        "",
    ]
    lines += _calls_table("bucket", sweeps)

    lines += ["", "## 6. Warm overhead (AWS calls stubbed)", "", "| request | CPU per request |", "|---|---|"]
    for name, figures in warm.items():
        lines.append(f"| {name} | {_m(figures['cpu_ms'], ' ms')} |")
    if "export" in report:
        lines += [
            "",
            "## 7. A person's rights: export and erase-all",
            "",
            "The export reads the history a page of 250 messages per Query, encodes it as it "
            "reads, and answers beyond EXPORT_INLINE_BYTES (5 MB) with a link to an export object. "
            "Erase-all marks every session of the user first, then erases each as the panic button does, "
            "DELETE_WORKERS // 2 at a time."
            + (
                " These two sections were measured in a run of their own (`python -m tests.benchmarks.run "
                "--only export,erase_all`), on the same machine, after the rest of this report."
                if report.get("rights_measured_alone")
                else ""
            ),
            "",
        ]
        lines += _calls_table("export", report["export"])
        lines += [""]
        lines += _calls_table("user", report["erase_all"])
    if "largest_session" in report:
        lines += _largest_session(report["largest_session"])
    if "chat" in report:
        lines += _chat(report["chat"])
    if "chat_stream" in report:
        lines += _chat_stream(report["chat_stream"])
    if "message_events" in report:
        lines += _message_events(report)
    if "sealing" in report:
        lines += _sealing(report)
    lines.append("")
    return "\n".join(lines)


def _chat(chat: dict[str, Any]) -> list[str]:
    """Section 9: one exchange of the chat, warm, with the stand-in model."""
    own = chat["own_ms"]
    return [
        "",
        "## 9. The chat",
        "",
        f"One exchange (a {CONTENT_CHARS_NOTE} user message with a `message_id`, on a session holding "
        f"{chat['history_messages']} messages, and a reply of the same size: the stand-in's, cut), warm, "
        f"{own['runs']} runs. A longer reply costs 2 more write units a KB. Round trip 1 is "
        "the user message's transaction (which also takes the session's reply guard) beside the Query of "
        "the history the model sees; round trip 2 is the reply's transaction, which frees the guard.",
        "",
        "| | measured |",
        "|---|---|",
        f"| DynamoDB requests | {_m(chat['requests'])}: {', '.join(chat['operations'])} |",
        f"| round trips besides the model | {_m(chat['round_trips'])} |",
        f"| write units | {_m(chat['write_units'])} |",
        f"| the service's own time around the model call (on moto) | p50 {own['p50']} ms, p95 {own['p95']} ms |",
    ]


def _chat_stream(streamed: dict[str, Any]) -> list[str]:
    """Section 10: one streamed exchange, warm, through ChatStreamFunction's `respond`."""
    added = streamed["first_delta_added_ms"]
    return [
        "",
        "## 10. The streamed chat",
        "",
        f"One streamed exchange as section 9's (a {CONTENT_CHARS_NOTE} message with a `message_id`, a reply of "
        f"the same size), through ChatStreamFunction's `respond` as the web adapter calls it, warm, "
        f"{added['runs']} runs. The added latency is the time from the model's first token reaching the "
        "service to the first `delta` event leaving it (the web adapter's and API Gateway's own relaying "
        "come on top, and are not measured here).",
        "",
        "| | measured |",
        "|---|---|",
        f"| first token to first delta (the service's own) | p50 {added['p50']} ms, p95 {added['p95']} ms |",
        f"| DynamoDB requests, round trips | {_m(streamed['requests'])}, {_m(streamed['round_trips'])} |",
        f"| write units | {_m(streamed['write_units'])} |",
        f"| bytes sent to the client (events) | {_m(streamed['bytes_sent_to_client'])} |",
    ]


def _largest_session(largest: dict[str, Any]) -> list[str]:
    """Section 8: the largest session the limits allow, exported and erased, against the functions'
    time (28 s, under API Gateway's 30) and memory (1,024 MB)."""
    export, erase, model = largest["export"], largest["erase"], largest["model"]
    limit = largest["function_timeout_s"]
    requests = ", ".join(f"{n} {op}" for op, n in export["requests"])
    return [
        "",
        "## 8. The largest session the limits allow",
        "",
        f"{largest['messages']:,} messages (MaxSessionMessages) of {largest['message_chars']:,} characters "
        f"(MaxMessageChars), every one a 4-byte character: {largest['history_mb']} MB of history, the most "
        "the defaults let a session hold. moto answers in its own time, not DynamoDB's or S3's, so the "
        "time on AWS is modelled from what is measured (requests, bytes, the function's CPU) with these "
        f"figures: a strongly consistent Query answering a 1 MB page in {model['query_s_per_mb'] * 1000:.0f} "
        f"ms, a BatchWriteItem of 25 deletes in {model['batch_write_s'] * 1000:.0f} ms, S3 writes at "
        f"{model['s3_mb_per_s']:.0f} MB/s, and the CPU measured here divided by a 1,024 MB function's share "
        f"of a vCPU ({model['lambda_vcpu']}). The memory is a process's peak resident memory (VmHWM) "
        "running one export, as Lambda reports Max Memory Used. Measured in a run of its own "
        "(`python -m tests.benchmarks.run --only largest_session`).",
        "",
        "| | export (JSON, written to its object in parts) | erase (the panic button) |",
        "|---|---|---|",
        f"| requests | {requests} | " + ", ".join(f"{n} {op}" for op, n in erase["requests"]) + " |",
        f"| seconds on moto | {export['seconds_on_moto']} | {erase['seconds_on_moto']} |",
        f"| CPU seconds (here) | {export['cpu_seconds']} | {erase['cpu_seconds']} (with moto's: an upper bound) |",
        f"| modelled seconds on AWS | {export['modelled_seconds_on_aws']} | {erase['modelled_seconds_on_aws']} |",
        f"| within the function's {limit} s | {_mark(export['modelled_seconds_on_aws'] < limit)} | "
        f"{_mark(erase['modelled_seconds_on_aws'] < limit)} |",
        f"| peak memory (of 1,024 MB) | {export['process_peak_mb']} MB ({export['process_mb_after_imports']} MB "
        f"after imports); {export['written_mb']} MB written | — |",
    ]


def _batches(events: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(n): figures for n, figures in events.items() if isinstance(figures, dict)}


def _append_unchanged(report: dict[str, Any], events: dict[str, Any]) -> tuple[bool, str]:
    """The append's figures as section 2 measures them (small session), and whether they are its
    targets: what the events leave the append."""
    units = report["append_units"]
    rows = [units[f"small session, {w} message_id"] for w in ("without", "with")]
    ok = events["append_sqs_requests"] == 0 and all(
        figures["write_units"]["max"] <= limit and figures["round_trips"]["max"] == 1
        for figures, limit in zip(rows, APPEND_UNITS_TARGET.values(), strict=True)
    )
    writes = "/".join(f"{figures['write_units']['median']:g}" for figures in rows)
    trips = "/".join(sorted({f"{figures['round_trips']['median']:g}" for figures in rows}))
    return ok, f"{writes} write units, {trips} round trip (without/with message_id)"


def _events_targets(report: dict[str, Any], events: dict[str, Any]) -> list[str]:
    ok, append = _append_unchanged(report, events)
    batches = _batches(events)
    trips = ", ".join(f"{n}: {figures['round_trips']['max']:g}" for n, figures in batches.items())
    within = all(
        figures["round_trips"]["max"] <= 1 + math.ceil(n / SEND_BATCH) for n, figures in batches.items()
    )
    return [
        f"| events: no write unit and no round trip added to an append | the append as section 2 measures it: "
        f"{append}; no SQS request among section 11's appends | {_mark(ok)} |",
        f"| events: publish ≤ 1 + ⌈n/{SEND_BATCH}⌉ round trips for a batch of n new messages (2 up to "
        f"{SEND_BATCH}) | {trips} | {_mark(within)} |",
    ]


def _message_events(report: dict[str, Any]) -> list[str]:
    """Section 11: PublishMessageEventsFunction, warm, for batches of new messages."""
    events = report["message_events"]
    batches = _batches(events)
    _, append = _append_unchanged(report, events)
    runs = next(iter(batches.values()))["round_trips"]["runs"]
    alone = bool(report.get("message_events_measured_alone"))
    lines = [
        "",
        "## 11. Message events (the bot's events)",
        "",
        f"Batches of n new {CONTENT_CHARS_NOTE} messages, appended through the append handler (each with "
        "a `message_id`, on a fresh session), then PublishMessageEventsFunction invoked, warm, with exactly "
        "those messages' stream records as Lambda's event source hands them over (its filter applied: the "
        f"session item's updates and the `message_id` markers never invoke it), {runs} runs a size. It reads "
        "each message's id, role and time with one strongly consistent BatchGetItem (a projection without "
        f"the content: it still costs what the whole item costs, a read unit per 4 KB) and sends the events "
        f"to the FIFO queue {SEND_BATCH} to a SendMessageBatch, one after the other (a session's events in "
        "order). The stream's own reads (GetRecords by Lambda's event source mapping) are not billed and "
        "are not counted. The function's own time is the invocation minus its waits on AWS (on moto, whose "
        "FIFO queue checks each send against every message it holds: its answers are slow and grow with "
        "the queue, which is emptied after each run, as a bot would take its events)."
        + (
            " Measured in a run of its own (`python -m tests.benchmarks.run --only message_events`), on "
            "the same machine, after the rest of this report."
            if alone
            else ""
        ),
        "",
        "| new messages in the batch | DynamoDB requests | round trips | read units | SQS requests | request bytes "
        "(to SQS) | invocation on moto | the function's own time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, figures in batches.items():
        lines.append(
            f"| {n} | {figures['dynamodb_requests']['median']:g} | {_m(figures['round_trips'])} | "
            f"{figures['read_units']['median']:g} | {figures['sqs_requests']['median']:g} | "
            f"{figures['request_bytes']['median']:,.0f} ({figures['sqs_bytes']['median']:,.0f}) | "
            f"{_m(figures['invocation_ms'], ' ms')} | {_m(figures['own_ms'], ' ms')} |"
        )
    lines += [
        "",
        f'The append itself is unchanged: {append}, as section 2 ("Write units of one append", small '
        f"session) measures it{' in the main run' if alone else ' in this same run'}. The stream is written by DynamoDB itself, outside the "
        "append's request, and the function runs after the append has answered: the events add nothing to "
        "the append's critical path, and none of this section's appends sent a request to SQS.",
        "",
        "Per 1,000 new messages, by the size of the batches Lambda hands over (up to BatchSize 100; with "
        "no batching window a quiet table's batches hold one message or a few):",
        "",
        "| batch | Lambda invocations | DynamoDB requests | read units | SQS requests |",
        "|---|---|---|---|---|",
    ]
    for n, figures in batches.items():
        per = 1000 / n
        lines.append(
            f"| {n} | {per:,.0f} | {per * figures['dynamodb_requests']['median']:,.0f} | "
            f"{per * figures['read_units']['median']:,.0f} | {per * figures['sqs_requests']['median']:,.0f} |"
        )
    return lines


# ---- section 12: sealing -----------------------------------------------------------------------------

# Secrets Manager, us-east-1: USD per 10,000 API calls
PRICE_SECRET_PER_10K = 0.05
# requests a function instance serves between its cold start and its retirement (assumptions)
REQUESTS_PER_COLD_START = (100, 1_000, 10_000)
# share of requests whose session's key the serving instance holds (read in the last CACHE_SECONDS)
KEY_HIT_RATES = (0.0, 0.5, 0.9, 0.99)
SEAL_VARIANT_NAMES = {
    "plaintext": "plaintext, no key lookup (the baseline)",
    "plaintext_cold_start": "plaintext, no key lookup, cold start",
    "legacy": "legacy session, as served now",
    "keyed_warm": "keyed, key held",
    "keyed_cold": "keyed, key not held",
    "keyed_cold_start": "keyed, cold start (neither key nor secret held)",
}
# the baseline each variant is compared with
SEAL_BASELINE = {
    "legacy": "plaintext",
    "keyed_warm": "plaintext",
    "keyed_cold": "plaintext",
    "keyed_cold_start": "plaintext_cold_start",
}
SEAL_APPENDS = {"append": 4, "append with message_id": 6}
# the append that moves the key's TTL in its transaction (run.SEAL_TTL_MOVE), against a plaintext append
SEAL_TTL_MOVE = "append moving the key's TTL (hourly)"
SEAL_BASE_OPERATION = {SEAL_TTL_MOVE: "append"}
# a transaction's update of the key item (under 1 KB): what moving the key's TTL may add to an append
KEY_TTL_MOVE_UNITS = 2


def _median(figures: dict[str, Any], name: str) -> float:
    return float(figures[name]["median"])


def _without_keys(figures: dict[str, Any]) -> tuple[float, float]:
    """A baseline's units less what it spent on the keys table (the panic button's mark deletes the
    key whatever the session: stubbing the lookups does not remove that)."""
    return (
        _median(figures, "read_units") - _median(figures, "keys_read_units"),
        _median(figures, "write_units") - _median(figures, "keys_write_units"),
    )


def seal_added(ops: dict[str, Any], op: str, variant: str) -> dict[str, float | None]:
    """What `variant` adds to the operation over its baseline (medians): requests, round trips, read
    and write units, p50 and p95 milliseconds. An operation without a plaintext form (the create):
    the keys' own share, and no time."""
    figures = ops[op][variant]
    per = ops.get(SEAL_BASE_OPERATION.get(op, op), {})
    base_name = SEAL_BASELINE[variant]
    if base_name not in per:
        return {
            "requests": _median(figures, "key_requests"),
            "round_trips": _median(figures, "added_round_trips"),
            "read_units": _median(figures, "keys_read_units"),
            "write_units": _median(figures, "keys_write_units"),
            "p50_ms": None,
            "p95_ms": None,
        }
    base = per[base_name]
    base_reads, base_writes = _without_keys(base)
    return {
        "requests": _median(figures, "requests") - _median(base, "requests"),
        "round_trips": _median(figures, "round_trips") - _median(base, "round_trips"),
        "read_units": _median(figures, "read_units") - base_reads,
        "write_units": _median(figures, "write_units") - base_writes,
        "p50_ms": round(figures["ms"]["p50"] - base["ms"]["p50"], 2),
        "p95_ms": round(figures["ms"]["p95"] - base["ms"]["p95"], 2),
    }


def _signed(value: float, unit: str = "") -> str:
    return f"{value:+g}{unit}" if value else f"0{unit}"


def _added_cell(added: dict[str, float | None]) -> str:
    cell = (
        f"{_signed(added['requests'] or 0)} req, {_signed(added['round_trips'] or 0)} RT, "
        f"{_signed(added['read_units'] or 0)} RU, {_signed(added['write_units'] or 0)} WU"
    )
    if added["p50_ms"] is not None:
        cell += f", p50 {added['p50_ms']:+.1f} ms"
    return cell


def seal_claims(sealing: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    """The issue's bars, each (held, what was measured). Round trips added: the variant's median
    against its baseline's (the secret's read included where the baseline has none); the append that
    moves the key's TTL (about once an hour) is a bar of its own."""
    ops = sealing["operations"]
    regular = [op for op in ops if op != SEAL_TTL_MOVE]

    def worst(variant: str) -> tuple[float, list[str]]:
        added = {
            op: seal_added(ops, op, variant)["round_trips"] or 0.0
            for op in regular
            if variant in ops[op] and SEAL_BASELINE[variant] in ops[op]
        }
        most = max(added.values())
        return most, [op for op, n in added.items() if n == most]

    appends = []
    appends_ok = True
    for op, limit in SEAL_APPENDS.items():
        units = {v: ops[op][v]["write_units"] for v in ("plaintext", "legacy", "keyed_warm", "keyed_cold")}
        appends_ok &= all(u["min"] == u["max"] == limit for u in units.values())
        appends.append(f"{op}: " + "/".join(f"{u['max']:g}" for u in units.values()))
    warm_requests = max(
        ops[op]["keyed_warm"][name]["max"] for op in regular for name in ("key_requests", "secret_reads")
    )
    warm_trips, _ = worst("keyed_warm")
    cold_trips, cold_ops = worst("keyed_cold")
    start_trips, start_ops = worst("keyed_cold_start")
    legacy_trips, legacy_ops = worst("legacy")
    aws = sealing["aws_calls"]
    claims = {
        "append_units": (
            appends_ok,
            "; ".join(appends) + " write units (plaintext/legacy/keyed, key held/keyed, key not held)",
        ),
        "warm": (
            warm_requests == 0 and warm_trips == 0,
            f"{warm_requests:g} requests for the key or the secret, {warm_trips:g} round trips added, "
            "in every operation",
        ),
        "legacy": (
            legacy_trips == 0,
            f"{legacy_trips:g} round trips added (worst: {', '.join(legacy_ops)}): that it has no key is "
            "remembered as a key is",
        ),
        "cold": (cold_trips <= 1, f"at most {cold_trips:g} ({', '.join(cold_ops)})"),
        "cold_start": (
            start_trips <= 1,
            f"at most {start_trips:g} ({', '.join(start_ops)}): the key's read and the secret's side by "
            "side, before the request's own write",
        ),
        "kms": (aws["kms"] == 0, f"{aws['kms']} KMS calls in {aws['requests_measured']:,} requests"),
    }
    if SEAL_TTL_MOVE in ops:
        moved = seal_added(ops, SEAL_TTL_MOVE, "keyed_warm")
        units = ops[SEAL_TTL_MOVE]["keyed_warm"]["write_units"]["median"]
        claims["ttl_move"] = (
            not moved["round_trips"] and units <= SEAL_APPENDS["append"] + KEY_TTL_MOVE_UNITS,
            f"{units:g} write units, {_signed(moved['round_trips'] or 0)} round trip, key held: the "
            f"append's own {SEAL_APPENDS['append']} and the key item's update in the same transaction "
            f"({KEY_TTL_MOVE_UNITS})",
        )
    return claims


def _seal_targets(sealing: dict[str, Any]) -> list[str]:
    claims = seal_claims(sealing)
    rows = [
        ("sealing: an append keeps its write units (4, or 6 with a message_id)", "append_units"),
        (
            "sealing: the append that moves the key's TTL (about once an hour of a session's "
            "activity) adds only the key item's update: 2 write units, no round trip",
            "ttl_move",
        ),
        (
            "sealing: a warm function serving a keyed session it served in the last minutes adds no round trip",
            "warm",
        ),
        ("sealing: … nor serving a legacy (plaintext) session it served in the last minutes", "legacy"),
        ("sealing: any other request adds at most one round trip — key not held", "cold"),
        ("sealing: … — first request of a cold start (neither key nor secret held)", "cold_start"),
        ("sealing: KMS calls per 1,000 requests: 0", "kms"),
    ]
    return [
        f"| {label} | {claims[key][1]} | {_mark(claims[key][0])} |" for label, key in rows if key in claims
    ]


def _sealing(report: dict[str, Any]) -> list[str]:
    """Section 12: what a key per conversation costs, operation by operation."""
    sealing = report["sealing"]
    ops = sealing["operations"]
    runs = sealing["runs"]
    lines = [
        "",
        "## 12. Sealing: what a key per conversation costs",
        "",
        f"Each user-facing operation, {runs} runs, on a keyed session (everything a person wrote sealed "
        "under the conversation's own key: chatvault/core/seal.py, dal/conversation_keys.py) beside "
        "the same operation on a legacy plaintext session (its items rewritten as they were stored before "
        "conversations had keys). The variants:",
        "",
        "- **plaintext, no key lookup** — the baseline: a legacy session with the key lookups stubbed "
        'out (answered "no key" without a request), which is what the operation costs without keys;',
        "- **legacy session, as served now** — the same session with the lookups done: a legacy session "
        "has no key, and the lookup that finds none is not remembered;",
        "- **keyed, key held** — the serving function read or wrote the session's key in the last "
        f"{sealing['cache_seconds']} s (conversation_keys.CACHE_SECONDS);",
        "- **keyed, key not held** — it did not (`conversation_keys.forget()` before the request);",
        "- **cold start** — neither the key nor the deployment's secret held (`dal/secret.py` "
        "`forget()` too): the first request of a new function instance; compared with the baseline's "
        "cold start, where the operations that write an audit entry read the secret anyway.",
        "",
        "Sessions hold a title, metadata and "
        f"{sealing['history_messages']} messages of {report['content_chars']} characters (sealed, or "
        f"plaintext in the legacy ones); list requests ask for {sealing['page_messages']} messages; the "
        f"session list is a signed-in user's page of {sealing['owned_sessions']} sessions (jwt mode); "
        "the chat turn's reply is the stand-in model's, cut to the same size; the panic button erases a "
        "session of 3 messages. Every variant's request of a run is measured before the next run's, so "
        "what slows moto as its tables grow slows all alike. Round trips here are the requests on the "
        "critical path: the longest chain of requests each sent after the one before it was answered "
        "(a key read the request waits for before its write is one; one sent beside the request's own "
        "read is not). Units as section 2. Times are in-process on moto (p50/p95): moto answers in "
        "its own time, so compare within a row; on AWS a round trip added is a DynamoDB GetItem (a few "
        "ms) or a Secrets Manager read (tens of ms).",
        "",
        "### Added per operation (medians, against the baseline)",
        "",
        "| operation | key held | key not held | cold start | legacy session |",
        "|---|---|---|---|---|",
    ]
    for op, per in ops.items():
        cells = [
            _added_cell(seal_added(ops, op, v)) if v in per else "—"
            for v in ("keyed_warm", "keyed_cold", "keyed_cold_start", "legacy")
        ]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    create = ops.get("create", {}).get("keyed_warm")
    lines += [
        "",
        "req: requests, RT: round trips, RU/WU: read/write units. "
        + (
            f"A create has no plaintext form any more: its row is the keys' own share (the key item, "
            f"{create['keys_write_units']['median']:g} write units inside the create's transaction). "
            if create
            else ""
        )
        + f"The {SEAL_TTL_MOVE.split(' (', maxsplit=1)[0]} is compared with a plaintext append: the "
        "session's key TTL is set as the last move would have left it, an hour's activity ago. "
        + "The panic button deletes the key in its mark whatever the session (a legacy one has none: "
        "the delete of a missing item is billed all the same), so its baseline is counted without that "
        "delete; the mark is a transaction for the key's sake, which bills its update of the session "
        "item twice (one write unit more, not counted above). The times are this shared machine's: two "
        "variants sending the same requests (the panic button's rows, the key held against the baseline) "
        "differ by several ms, so a difference of that order is noise; the requests and round trips are "
        "what carry over to AWS.",
        "",
        "### Per operation and variant",
        "",
        "| operation | variant | requests (keys table, secret) | round trips | read units (keys table) | "
        "write units (keys table) | p50 / p95 | requests by operation |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op, per in ops.items():
        for n, (variant, figures) in enumerate(per.items()):
            by_op = ", ".join(f"{name} × {count}" for name, count in figures["calls"])
            lines.append(
                f"| {op if n == 0 else ''} | {SEAL_VARIANT_NAMES[variant]} | "
                f"{_median(figures, 'requests'):g} ({_median(figures, 'key_requests'):g}, "
                f"{_median(figures, 'secret_reads'):g}) | "
                f"{_m(figures['round_trips'])} | "
                f"{_median(figures, 'read_units'):g} ({_median(figures, 'keys_read_units'):g}) | "
                f"{_median(figures, 'write_units'):g} ({_median(figures, 'keys_write_units'):g}) | "
                f"{figures['ms']['p50']} / {figures['ms']['p95']} ms | {by_op} |"
            )
    sizes = sealing["item_sizes"]
    lines += [
        "",
        "### Bytes stored per item",
        "",
        f"As DynamoDB sizes an item (attribute names and values). A sealed value is its plaintext plus "
        f"{sizes['seal_overhead_bytes']} bytes (seal.OVERHEAD: version, nonce, tag), under another "
        "attribute name; the session item also names its key (`key_id`) and when the key's TTL falls "
        "(`key_expires_at`). One conversation, title and metadata short, one "
        f"{report['content_chars']}-character message with a `message_id`:",
        "",
        "| item | legacy | keyed | added | attributes (keyed / legacy only) |",
        "|---|---|---|---|---|",
    ]
    for label, item in sizes["items"].items():
        names = f"{', '.join(item['keyed_only_attributes']) or '—'} / {', '.join(item['legacy_only_attributes']) or '—'}"
        lines.append(
            f"| {label} | {item['legacy_bytes']} | {item['keyed_bytes']} | {item['added_bytes']:+d} | {names} |"
        )
    crypto = sealing["crypto"]
    lines += [
        "",
        f"None of it crosses a unit here: a message item stays under 1 KB (an append's 4 write units), "
        f"a profile and session item under 1 KB. The cryptography itself, CPU over "
        f"{crypto['iterations']:,} calls: sealing a {report['content_chars']}-character message "
        f"{crypto['seal_message_us']} µs, opening it {crypto['open_message_us']} µs, unwrapping a "
        f"conversation's key {crypto['unwrap_key_us']} µs.",
    ]
    lines += _seal_per_thousand(sealing, report)
    return lines


def _seal_per_thousand(sealing: dict[str, Any], report: dict[str, Any]) -> list[str]:
    ops = sealing["operations"]
    aws = sealing["aws_calls"]
    cold_start = sealing["secret_after_cold_start"]
    get_cold = ops["get session"]["keyed_cold"]
    read_units = _median(get_cold, "keys_read_units")
    start_reads = {
        op: _median(per["keyed_cold_start"], "secret_reads")
        for op, per in ops.items()
        if "keyed_cold_start" in per
    }
    lines = [
        "",
        "### Secret reads and KMS calls per 1,000 requests",
        "",
        f"Measured: **{aws['kms']} KMS calls** in the {aws['requests_measured']:,} requests of this section "
        "(every request any botocore client sent, counted by service: the data keys are wrapped under a "
        "key derived from the deployment's secret, not by KMS). The secret is read once per function "
        f"instance: a new instance serving {cold_start['requests']} requests on a keyed session, each "
        f"missing the key cache, read it {cold_start['secret_reads']} time(s); each cold-start request "
        f"above read it {' or '.join(sorted({f'{v:g}' for v in start_reads.values()}))} time(s), and no "
        "request of a warm instance read it. So per 1,000 requests it is 1,000 / (requests an instance "
        "serves from its cold start to its retirement); at Secrets Manager's "
        f"${PRICE_SECRET_PER_10K} per 10,000 calls:",
        "",
        "| requests per instance (assumed) | secret reads per 1,000 requests | per million requests | KMS calls per 1,000 |",
        "|---|---|---|---|",
    ]
    for n in REQUESTS_PER_COLD_START:
        per_thousand = 1000 / n
        dollars = per_thousand * 1000 * PRICE_SECRET_PER_10K / 10_000
        lines.append(f"| {n:,} | {per_thousand:g} | ${dollars:.4f} | {aws['kms']} |")
    lines += [
        "",
        "Functions that write an audit entry or count a client's rate (create, upload, export, the panic "
        "button, a PATCH that ends the session) read the secret on a cold start anyway; the others (get, "
        "the lists, append, chat, any other PATCH) read it now for a keyed session's key, where they read "
        "no secret before.",
        "",
        "Keys-table reads per 1,000 requests on single sessions, by the share served by an instance that "
        f"holds the key (one strongly consistent GetItem a miss: {read_units:g} read unit, measured; "
        f"${PRICE_READ_PER_MILLION} per million read units):",
        "",
        "| key held for | GetItem per 1,000 requests | read units per 1,000 | per million requests |",
        "|---|---|---|---|",
    ]
    for hit in KEY_HIT_RATES:
        misses = 1000 * (1 - hit)
        lines.append(
            f"| {hit:.0%} | {misses:g} | {misses * read_units:g} | "
            f"${misses * 1000 * read_units * PRICE_READ_PER_MILLION / 1e6:.4f} |"
        )
    page = ops.get("list sessions (a page)", {}).get("keyed_cold")
    legacy_reads = {op: _median(per["legacy"], "key_requests") for op, per in ops.items() if "legacy" in per}
    lookups = "; ".join(
        f"{count:g} GetItem a request for {', '.join(op for op, n in legacy_reads.items() if n == count)}"
        for count in sorted(set(legacy_reads.values()) - {0}, reverse=True)
    )
    lines += [
        "",
        "A key is held for CACHE_SECONDS from when it was read or written, not from its last use: a "
        f"session only read, without pause, by one instance misses once every {sealing['cache_seconds']} s. "
        + (
            f"A list page reads the keys it lacks in one BatchGetItem beside the profiles "
            f"({_median(page, 'keys_read_units'):g} read units for {sealing['owned_sessions']} keys). "
            if page
            else ""
        )
        + "That a legacy session has no key is held the same way: served again within that time, "
        + (f"it still looked up: {lookups}. " if lookups else "it looks nothing up. ")
        + "Writes to the "
        "keys table: the create's key item and the panic button's delete (in their transactions), and "
        "the key's TTL moved with the session's, by every PATCH and by an append about once an hour of "
        "activity (2 write units each time).",
    ]
    return lines


def _seal_misses(sealing: dict[str, Any]) -> list[str]:
    """Why a sealing bar is missed, for those that are."""
    claims = seal_claims(sealing)
    lines = []
    if not claims["legacy"][0]:
        lines.append(
            "- **Sealing, legacy sessions.** A session written before conversations had keys has none; "
            "that it has none is remembered for as long as a key would be, so a function serving it again "
            "should look nothing up (section 12 measures where it still does). Sealing legacy sessions in "
            "place (the operator's migration, dal/seal_legacy.py) removes them."
        )
    if "ttl_move" in claims and not claims["ttl_move"][0]:
        lines.append(
            "- **Sealing, the key's TTL.** A key's TTL follows its session's, so that the conversation "
            "becomes unreadable when the session expires; an append moves it, in its own transaction, "
            "when the session's new expiry would pass it by more than the slack (an hour, or a 24th of "
            "the retention). The function holding the key knows its TTL and moves it in the first "
            "attempt; section 12 shows where that did not hold."
        )
    if not claims["cold_start"][0]:
        lines.append(
            "- **Sealing, cold start.** The first request a new function instance serves on a keyed "
            "session reads the key and the deployment's secret (the wrapping key is derived from it) side "
            "by side; section 12 shows where it added more than one round trip."
        )
    return lines
