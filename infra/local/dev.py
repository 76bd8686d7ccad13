"""`make dev`: moto server on 127.0.0.1:$MOTO_PORT with the template's tables and bucket, the API on
127.0.0.1:$PORT invoking the real handlers, the template's schedules (the orphan sweep) and its
EventBridge rules (the bucket's ObjectCreated events, to ConfirmUploadFunction).
Ctrl-C stops everything.

While it runs, `.dev-stack.json` (or $CHATVAULT_DEV_STATE) says where: `make invoke` finds the stack
from it."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from infra.local import events, scheduler
from infra.local.emulator import provision, start_moto
from infra.local.gateway import Gateway, serve
from infra.local.runtime import Runtime
from infra.local.template import Stack, parameter_overrides, state_file


def main() -> int:
    port = int(os.environ.get("PORT", "3000"))
    moto_port = int(os.environ.get("MOTO_PORT", "5000"))
    endpoint = f"http://127.0.0.1:{moto_port}"
    stack = Stack.from_template(parameter_overrides())

    moto = start_moto(moto_port)
    names = provision(stack, endpoint)
    queues = events.provision(stack, endpoint)
    runtime = Runtime(stack.functions(), stack.layer_dirs(), endpoint)
    server = serve(Gateway(stack, runtime), port)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheduler.start(stack, runtime, stop)
    events.start(stack, runtime, endpoint, queues, stop)
    state = state_file()
    state.write_text(
        json.dumps(
            {
                "api": f"http://127.0.0.1:{port}",
                "moto": endpoint,
                "parameter_overrides": parameter_overrides(),
            }
        )
    )
    print(f"[dev] AWS emulator (moto) at {endpoint}: {', '.join(sorted(names.values()))}", flush=True)
    print(f"[dev] AuthMode={stack.parameters['AuthMode']}  API at http://127.0.0.1:{port}/api/v1", flush=True)
    stop.wait()
    state.unlink(missing_ok=True)
    server.shutdown()
    runtime.close()
    moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
