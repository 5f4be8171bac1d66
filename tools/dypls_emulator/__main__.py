"""Command line: serve the emulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .config import DEFAULT_HOST, DEFAULT_PORT
from .server import Emulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.dypls_emulator",
        description="Local Dyplsapi emulator: BindAxnExtension, QuerySubscriptionDetail, "
        "UpdateSubscription, QuerySubsId and UnbindSubscription with signature checks, plus a "
        "control API for faults "
        "(tools/dypls_emulator/README.md).",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}); 0 picks a free port",
    )
    parser.add_argument(
        "--max-extensions",
        type=int,
        default=None,
        help="how many extensions each X number hands out before isv.NO_AVAILABLE_NUMBER "
        "(default: the pool's own, see tools/dypls_emulator/config.py)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log each request's method, path and status"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start, print one line describing the endpoint, and serve until signalled."""
    args = parse_args(argv)
    emulator = Emulator(
        args.host,
        args.port,
        max_extensions_per_number=args.max_extensions,
        verbose=args.verbose,
    )
    emulator.start()
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    info = emulator.info()
    keys = ",".join(str(k) for k in info["access_key_ids"])  # type: ignore[attr-defined]
    pools = ",".join(str(p["key"]) for p in info["pools"])  # type: ignore[attr-defined]
    print(f"dypls-emulator {emulator.url} access_key_ids={keys} pools={pools}", flush=True)
    while not stop.wait(0.5):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
