"""Answers: the HTTP response struct for HTTP-shaped events, the plain body for direct calls."""

from __future__ import annotations

from typing import Any

from .service import Outcome


def http_response(outcome: Outcome, extra_headers: dict[str, str] | None = None) -> dict[str, Any]:
    """``{statusCode, headers, isBase64Encoded, body}`` with a JSON body, as FC and API Gateway need."""
    headers = {"Content-Type": "application/json; charset=utf-8", **outcome.headers}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    if extra_headers:
        headers.update(extra_headers)
    return {
        "statusCode": outcome.status,
        "headers": headers,
        "isBase64Encoded": False,
        "body": outcome.body_text(),  # a replay is the stored text, byte for byte
    }
