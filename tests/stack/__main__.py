"""``make stack``: docker-compose.yaml's services as local processes, for a person to use; Ctrl-C stops it.

Starts what :func:`tests.stack.harness.compose_stack` starts (every service of the compose file,
2 Celery workers), prints each instance with its command, the UI's URL and the admin login, then
waits. SIGINT (Ctrl-C) or SIGTERM stops every process group and prints how each ended.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType

from tests.stack.compose import COMPOSE_FILE
from tests.stack.harness import STACK_ARTIFACTS, StackError, compose_stack


def main() -> int:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        print(f"\n{signal.Signals(signum).name}: stopping the stack...", flush=True)
        stop.set()

    began = time.monotonic()
    print(
        f"Starting the services of {COMPOSE_FILE.name} as local processes (logs: {STACK_ARTIFACTS})...",
        flush=True,
    )
    try:
        with compose_stack() as stack:
            # Handled only once ready: a Ctrl-C while starting ends the start-up at once (finally
            # clauses stop what was started).
            signal.signal(signal.SIGINT, request_stop)
            signal.signal(signal.SIGTERM, request_stop)
            print(f"\nReady in {time.monotonic() - began:.0f} s. Services (from {COMPOSE_FILE.name}):")
            print(f"{'instance':<22} {'compose service':<22} {'state':<11} command")
            print("\n".join(stack.describe()))
            user, password = stack.admin
            print(f"\nAirflow UI and REST API: {stack.ui_url}  (log in as {user} / {password})")
            print(f"Emulator (Graph and MTP APIs): {stack.emulator.url}  CA: {stack.emulator.ca_bundle}")
            print("Press Ctrl-C to stop.", flush=True)
            while not stop.wait(1.0):
                stack.check_alive()
    except StackError as exc:
        print(f"\nthe stack failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted while starting; stopped what had started.")
        return 130
    print((STACK_ARTIFACTS / "stopped.log").read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
