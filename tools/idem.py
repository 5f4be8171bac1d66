"""Inspect or clear one idempotency record (operator tool; not deployed).

    python -m tools.idem --url rediss://:PASSWORD@host:6379/0 --pool FC100000000000001 \\
        --order-id DD20240501000071 get|clear
    python -m tools.idem --url … --record axn:idem:3f5c… get|clear

The key is given the way the function derived it: ``--key`` (an Idempotency-Key header),
``--order-id`` (PoolKey + OutOrderId), ``--message-id`` (an event's identity, e.g.
``mns:C6DB60D1…``) or ``--content`` (a key-less batch record's fingerprint), each with
``--pool`` and ``--function`` (the FC function name, default ``axn-bind``); or as the record
itself, ``--record axn:idem:…``, as the function's logs and 409 answers name it. Clear an
UNKNOWN record only after checking with QuerySubscriptionDetail whether the earlier attempt
left a binding.
"""

from __future__ import annotations

import argparse
import json
import sys

from tools.fc_local import CODE_ROOT  # noqa: F401 - puts src/ on sys.path


def main(argv: list[str] | None = None) -> int:
    from axn_bind.idempotency import IdempotencyKey, open_store, record_key

    parser = argparse.ArgumentParser(prog="python -m tools.idem", description=__doc__)
    parser.add_argument("--url", required=True, help="the function's AXN_IDEMPOTENCY_URL")
    parser.add_argument("--function", default="axn-bind", help="FC function name")
    parser.add_argument("--pool", help="PoolKey of the request (with --key/--order-id/…)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--key", help="Idempotency-Key header value")
    which.add_argument("--order-id", help="OutOrderId")
    which.add_argument("--message-id", help="event record identity, e.g. mns:<messageId>")
    which.add_argument("--content", help="fingerprint of a key-less batch record")
    which.add_argument("--record", help="the record as logged: axn:idem:<sha256>")
    parser.add_argument("action", choices=("get", "clear"), help="show or delete the record")
    args = parser.parse_args(argv)

    if args.record:
        hashed = args.record
    else:
        if not args.pool:
            parser.error("--pool is required with --key, --order-id, --message-id or --content")
        kind, value = next(
            (kind, value)
            for kind, value in (
                ("header", args.key),
                ("order", args.order_id),
                ("message", args.message_id),
                ("content", args.content),
            )
            if value
        )
        hashed = record_key(args.function, args.pool, IdempotencyKey(kind, value))
    store = open_store(args.url)
    try:
        if args.action == "clear":
            cleared = store.clear(hashed)
            store.outbox_remove(hashed)  # a cleared record owes no announcement
            print(json.dumps({"cleared": cleared}))
            return 0
        record = store.get(hashed)
        if record is None:
            print(json.dumps({"record": None}))
            return 1
        out = record._asdict()
        out["state"] = record.state.value
        out.pop("token", None)
        print(json.dumps({"record": out}, ensure_ascii=False, indent=2))
        return 0
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
