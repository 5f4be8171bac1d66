"""Response bodies in JSON and XML, and request ids."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from .config import HOST_ID

JSON_TYPE = "application/json;charset=utf-8"
XML_TYPE = "text/xml;charset=utf-8"


def new_request_id() -> str:
    """An upper-case UUID, as the service returns."""
    return str(uuid.uuid4()).upper()


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(parent: ET.Element, payload: Mapping[str, object]) -> None:
    for name, value in payload.items():
        child = ET.SubElement(parent, name)
        if isinstance(value, Mapping):
            _fill(child, value)
        elif value is not None:
            child.text = _text(value)


def to_xml(root: str, payload: Mapping[str, object]) -> bytes:
    """`<root>` with one element per key, nested for mappings."""
    element = ET.Element(root)
    _fill(element, payload)
    return ET.tostring(element, encoding="UTF-8", xml_declaration=True)


def render(payload: Mapping[str, object], root: str, fmt: str) -> tuple[bytes, str]:
    """Body and content type for `fmt` (`JSON` or `XML`)."""
    if fmt == "XML":
        return to_xml(root, payload), XML_TYPE
    return json.dumps(payload, ensure_ascii=False).encode("utf-8"), JSON_TYPE


def gateway_payload(request_id: str, code: str, message: str) -> dict[str, object]:
    """The gateway error body."""
    return {
        "RequestId": request_id,
        "HostId": HOST_ID,
        "Code": code,
        "Message": message,
        "Recommend": (
            f"https://api.aliyun.com/troubleshoot?q={code}&product=Dyplsapi&requestId={request_id}"
        ),
    }


def business_payload(
    request_id: str, code: str, message: str, extra: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The HTTP 200 body: Message, RequestId, Code, then the action's fields."""
    return {"Message": message, "RequestId": request_id, "Code": code, **(extra or {})}
