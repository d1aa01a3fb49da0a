"""``orgkms local serve``: the embedded stack behind moto's HTTP server, on loopback."""

import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from moto.server import ThreadedMotoServer

from orgkms.local.stack import EmbeddedStack

POLL_SECONDS = 0.2


def serve(host: str, port: int, stack_name: str) -> int:
    endpoint = f"http://{host}:{port}"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    # Handlers run in this process and reach the emulator over HTTP, as they would AWS.
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["MOTO_PORT"] = str(port)
    stack = EmbeddedStack(stack_name, handler_env={"AWS_ENDPOINT_URL": endpoint})
    try:
        stack.start(use_mock=False)
    except Exception:
        server.stop()
        raise
    stopping = threading.Event()
    poller = threading.Thread(target=_poll, args=(stack, stopping), daemon=True)
    poller.start()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    sys.stdout.write(f"stack {stack_name} deployed from {stack.root / 'template.yaml'}\n")
    sys.stdout.write(f"ready {endpoint}\n")
    sys.stdout.flush()
    try:
        while not stopping.is_set():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stopping.set()
        poller.join(timeout=5)
        stack.stop()
        server.stop()
    return 0


def _poll(stack: EmbeddedStack, stopping: threading.Event) -> None:
    """Lambda's SQS pollers, for as long as the server runs."""
    while not stopping.is_set():
        try:
            stack.deliver()
        except Exception as err:
            _report(err)
        stopping.wait(POLL_SECONDS)


def _report(err: Any) -> None:
    sys.stderr.write(f"orgkms local: delivery failed: {type(err).__name__}: {err}\n")
