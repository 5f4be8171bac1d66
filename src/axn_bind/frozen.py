"""``evolve``: :func:`dataclasses.replace` for the frozen records the bind path copies.

``replace`` looks up every field and calls ``__init__`` again (about 10 µs for an Outcome on
python3.10, and a bind copies three records); these classes have no ``__post_init__`` and no
``__slots__``, so a copy of the instance dictionary is the same object, made in a fraction of it.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def evolve(obj: T, **changes: Any) -> T:
    """A copy of the dataclass instance ``obj`` with ``changes``; an unknown field name raises
    TypeError, as ``replace`` does."""
    fields = obj.__dataclass_fields__  # type: ignore[attr-defined]
    for name in changes:
        if name not in fields:
            raise TypeError(f"{type(obj).__name__} has no field {name!r}")
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__, **changes)
    return new
