"""The local HTTP trigger for the bench's HTTP-path load, run as a script by ``bench/run.py``.

``tools.localserver.TriggerHandler`` (what ``make run`` serves) behind a one-request-at-a-time
``HTTPServer``, as an FC python instance serves (instance concurrency 1), with a listen backlog
deep enough for the bench's client threads. The function is imported from ``--code`` and
initialised once. Prints the port on one line, then serves until stdin closes.
"""

from __future__ import annotations

import argparse
import sys
import threading
from http.server import HTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _Server(HTTPServer):
    request_queue_size = 128  # queued connections wait in the backlog, they are not refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", type=Path, required=True, help="the function's code root")
    args = parser.parse_args()
    sys.path.insert(0, str(args.code))
    import index  # the function, from --code (imported before tools, which would add src/)

    sys.path.append(str(ROOT))
    from tools.fc_local import FcContext
    from tools.localserver import TriggerHandler

    index.initialize(FcContext())
    server = _Server(("127.0.0.1", 0), TriggerHandler)

    def stop_at_eof() -> None:
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=stop_at_eof, daemon=True).start()
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
