"""Inspect or clear one idempotency record (operator tool; not deployed).

    python -m tools.idem --url rediss://:PASSWORD@host:6379/0 --pool FC100000000000001 \\
        --order-id DD20240501000071 get|clear

The key is given the way the function derived it: ``--key`` (an Idempotency-Key header),
``--order-id`` (PoolKey + OutOrderId) or ``--message-id`` (an event's identity, e.g.
``mns:C6DB60D1…``). ``--function`` is the FC function name (default ``axn-bind``). Clear an
UNKNOWN record only after checking with QuerySubscriptionDetail whether the earlier attempt
left a binding.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from tools.fc_local import CODE_ROOT  # noqa: F401 - puts src/ on sys.path


def main(argv: list[str] | None = None) -> int:
    from axn_bind.idempotency import open_store
    from axn_bind.service import record_key

    parser = argparse.ArgumentParser(prog="python -m tools.idem", description=__doc__)
    parser.add_argument("--url", required=True, help="the function's AXN_IDEMPOTENCY_URL")
    parser.add_argument("--function", default="axn-bind", help="FC function name")
    parser.add_argument("--pool", required=True, help="PoolKey of the request")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--key", help="Idempotency-Key header value")
    which.add_argument("--order-id", help="OutOrderId")
    which.add_argument("--message-id", help="event record identity, e.g. mns:<messageId>")
    parser.add_argument("action", choices=("get", "clear"))
    args = parser.parse_args(argv)

    key = (
        f"header:{args.key}"
        if args.key
        else (f"order:{args.order_id}" if args.order_id else f"message:{args.message_id}")
    )
    store = open_store(args.url)
    try:
        hashed = record_key(args.function, args.pool, key)
        if args.action == "clear":
            print(json.dumps({"cleared": store.clear(hashed)}))
            return 0
        record = store.get(hashed)
        if record is None:
            print(json.dumps({"record": None}))
            return 1
        out = dataclasses.asdict(record)
        out["state"] = record.state.value
        out.pop("token", None)
        print(json.dumps({"record": out}, ensure_ascii=False, indent=2))
        return 0
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
