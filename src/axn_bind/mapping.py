"""Field mapping for event messages that do not carry Dyplsapi field names.

``AXN_FIELD_MAP`` is a JSON object from a bind-request field to either a path into the message
(``"$.customer.phone"``; list items by index, ``"$.items.0.phone"``) or a constant default
(``"FC100000000000001"``, ``3600``). With a mapping, only mapped fields are read from an event
message; HTTP requests and direct invocations are never mapped.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from .errors import ConfigurationError, RequestValidationError

_MISSING = object()


class FieldMap(NamedTuple):
    """AXN_FIELD_MAP, parsed: where each bind field is taken from in a foreign message."""

    paths: dict[str, tuple[str, ...]]  # target field -> path parts
    constants: dict[str, Any]

    @classmethod
    def parse(cls, text: str, allowed: set[str]) -> FieldMap | None:
        """Parse AXN_FIELD_MAP; ConfigurationError names what is wrong."""
        if not text.strip():
            return None
        try:
            spec = json.loads(text)
        except ValueError:
            raise ConfigurationError(
                'AXN_FIELD_MAP must be a JSON object such as {"PhoneNoA": "$.customer.phone"}.'
            ) from None
        if not isinstance(spec, dict) or not spec:
            raise ConfigurationError("AXN_FIELD_MAP must be a non-empty JSON object.")
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ConfigurationError(
                f"AXN_FIELD_MAP maps to {', '.join(unknown)}, which are not bind-request fields."
            )
        paths: dict[str, tuple[str, ...]] = {}
        constants: dict[str, Any] = {}
        for target, source in spec.items():
            if isinstance(source, str) and source.startswith("$."):
                parts = tuple(source[2:].split("."))
                if not all(parts):
                    raise ConfigurationError(f"AXN_FIELD_MAP: {target} has an empty path step.")
                paths[target] = parts
            elif isinstance(source, (str, int, bool)) and not isinstance(source, float):
                constants[target] = source
            else:
                raise ConfigurationError(
                    f"AXN_FIELD_MAP: {target} must map to a $.path or a string/number constant."
                )
        return cls(paths, constants)

    def apply(self, message: Any) -> dict[str, Any]:
        """The bind request read from ``message``; paths the message lacks are left out."""
        out = dict(self.constants)
        for target, parts in self.paths.items():
            value = _lookup(message, parts)
            if value is not _MISSING and value is not None:
                out[target] = value
        return out

    def explain(self, error: RequestValidationError) -> RequestValidationError:
        """The same error with each mapped field's source path added to its message."""
        errors = [
            {**e, "Message": f"{e['Message']} (mapped from $.{'.'.join(self.paths[e['Field']])})"}
            if e["Field"] in self.paths
            else e
            for e in error.errors or []
        ]
        return RequestValidationError.from_fields(errors)


def _lookup(value: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value
