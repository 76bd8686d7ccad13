"""`make dev`: moto server on 127.0.0.1:$MOTO_PORT with the template's tables and bucket, the API on
127.0.0.1:$PORT invoking the real handlers, the template's schedules (the orphan sweep) and its
EventBridge rules (the bucket's ObjectCreated events, to ConfirmUploadFunction), its tables' streams
(each new message's event, to PublishMessageEventsFunction), and the demo page at
http://127.0.0.1:$PORT/. `make dev BOT=echo` also runs the example bot (examples/echo_bot) as the
message events' subscriber (infra/local/subscriber.py), with the chat routes off (ModelId empty) unless
PARAMETER_OVERRIDES names a ModelId. Ctrl-C stops everything; the emulator keeps its data in memory, so
every session, message and file goes with it.

While it runs, `.dev-stack.json` (or $CHATVAULT_DEV_STATE) says where: `make invoke` finds the stack
from it."""

from __future__ import annotations

import sys

# Before anything else is imported: on an older Python the functions' own imports fail (itertools.batched
# and the like) and every request would be a 500 after a banner that says all is well.
if sys.version_info < (3, 13):  # noqa: UP036 - the check is for an interpreter older than the project
    sys.exit(
        f"make dev: chatvault runs on Python 3.13 (Lambda's python3.13); this is {sys.version.split()[0]}. "
        "Install Python 3.13 (pyenv install 3.13, or your system's python3.13), then `rm -rf .venv` and "
        "`make dev` again."
    )

import json
import os
import shlex
import signal
import socket
import threading

from infra.local import events, scheduler, streams, subscriber
from infra.local.emulator import provision, start_moto
from infra.local.gateway import Gateway, serve
from infra.local.runtime import Runtime
from infra.template import Stack, parameter_overrides, state_file

LOCAL_ONLY_VARIABLES = ("STAND_IN_DELAY_MS", "STAND_IN_WORD_MS")


def _taken(port: int) -> bool:
    """Something already listens on 127.0.0.1:port (a bind fails). SO_REUSEADDR as the servers bind,
    so that the connections a previous `make dev` left in TIME_WAIT do not count as a listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def bot_overrides(bot: str) -> dict[str, str]:
    """The parameters: PARAMETER_OVERRIDES over the local defaults; with a bot, ModelId empty (the chat
    routes off: the bot answers) unless PARAMETER_OVERRIDES names a ModelId."""
    overrides = parameter_overrides()
    named = {pair.split("=", 1)[0] for pair in shlex.split(os.environ.get("PARAMETER_OVERRIDES", ""))}
    if bot and "ModelId" not in named:
        overrides["ModelId"] = ""
    return overrides


def main() -> int:
    port = int(os.environ.get("PORT", "3000"))
    moto_port = int(os.environ.get("MOTO_PORT", "5000"))
    for name, number, other in (("PORT", port, 3001), ("MOTO_PORT", moto_port, 5001)):
        if _taken(number):
            print(
                f"make dev: port {number} ({name}) is in use on 127.0.0.1: stop what holds it, or choose "
                f"another (make dev {name}={other}).",
                file=sys.stderr,
            )
            return 2
    endpoint = f"http://127.0.0.1:{moto_port}"
    bot = os.environ.get("BOT", "")
    overrides = bot_overrides(bot)
    if bot and not subscriber.bot_template(bot).exists():
        print(f"make dev: no bot {bot!r}: BOT=echo runs examples/echo_bot", file=sys.stderr)
        return 2
    stack = Stack.from_template(overrides)

    moto = start_moto(moto_port)
    names = provision(stack, endpoint)
    queues = events.provision(stack, endpoint)
    # STAND_IN_DELAY_MS (make dev STAND_IN_DELAY_MS=800): the stand-in model waits that long before it
    # answers, so that a reply being made can be seen (and two chats at once can meet)
    local = {name: os.environ[name] for name in LOCAL_ONLY_VARIABLES if os.environ.get(name)}
    runtime = Runtime(stack.functions(), stack.layer_dirs(), endpoint, local)
    server = serve(Gateway(stack, runtime), port)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # SIGHUP: as a deployment, every function starts cold (tests: a restore is a deployment)
    signal.signal(signal.SIGHUP, lambda *_: runtime.recycle())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheduler.start(stack, runtime, stop)
    events.start(stack, runtime, endpoint, queues, stop)
    streams.start(stack, runtime, endpoint, stop)
    bot_runtime = subscriber.start(bot, stack, f"http://127.0.0.1:{port}", endpoint, stop) if bot else None
    state = state_file()
    state.write_text(
        json.dumps(
            {
                "api": f"http://127.0.0.1:{port}",
                "moto": endpoint,
                "parameter_overrides": overrides,
                "pid": os.getpid(),
            }
        )
    )
    print(f"[dev] AWS emulator (moto) at {endpoint}: {', '.join(sorted(names.values()))}", flush=True)
    modes = f"AuthMode={stack.parameters['AuthMode']}  ModelId={stack.parameters['ModelId']}"
    print(f"[dev] {modes}  API at http://127.0.0.1:{port}/api/v1", flush=True)
    print(f"[dev] The demo page: http://127.0.0.1:{port}/", flush=True)
    print("[dev] Everything is kept in memory: stopping make dev forgets every session and file.", flush=True)
    stop.wait()
    state.unlink(missing_ok=True)
    server.shutdown()
    runtime.close()
    if bot_runtime is not None:
        bot_runtime.close()
    moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
