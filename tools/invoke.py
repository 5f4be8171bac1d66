"""``make invoke EVENT=events/x.json``: run one event file through ``index.handler``.

The file's bytes are the event, as FC delivers them. Unless ``DYPLS_ENDPOINT`` is set, an
emulator is started on a free port and the function is pointed at it. Prints what the handler
returned (or the transient-failure exception that would make FC redeliver) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tools.dypls_emulator import Emulator
from tools.fc_local import FcContext, local_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make invoke", description=__doc__.split("\n")[0])
    parser.add_argument(
        "event",
        type=Path,
        help="the event file whose bytes are passed to the handler, e.g. events/direct.json "
        "(events/README.md lists the samples)",
    )
    args = parser.parse_args(argv)
    try:
        event = args.event.read_bytes()
    except OSError as exc:
        samples = (
            sorted(p.name for p in Path("events").glob("*.json")) if Path("events").is_dir() else []
        )
        hint = f" Samples in events/: {', '.join(samples)}." if samples else ""
        print(
            f"make invoke: cannot read the event file {args.event} ({exc.strerror or exc}). "
            f"Give an existing file: make invoke EVENT=events/<file>.json.{hint}",
            file=sys.stderr,
        )
        return 2

    emulator = None
    if not os.environ.get("DYPLS_ENDPOINT"):
        emulator = Emulator("127.0.0.1", 0).start()
        for name, value in local_env(emulator.url).items():
            os.environ.setdefault(name, value)
    from axn_bind.errors import TransientFailureError
    from index import handler

    try:
        result = handler(event, FcContext())
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    except TransientFailureError as exc:
        print(json.dumps({"raised": type(exc).__name__, "message": str(exc)}, indent=2))
        return 3
    finally:
        if emulator:
            emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
