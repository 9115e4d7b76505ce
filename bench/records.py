"""`Record`: a dataclass of measured figures that turns into plain JSON and back, by its field types.

Invariant: `type(r).from_json(json.loads(json.dumps(r.to_json()))) == r` for every record whose fields are
numbers, strings, booleans, None, records, or lists, tuples and dicts of those (dict keys: str or int; JSON
writes int keys as strings and `from_json` turns them back). A field whose value is None and whose default is None
is left out of the JSON, so an optional figure that was not measured does not appear in results.json. A field the
JSON lacks takes its default; a field without a default must be present, else `from_json` names it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

R = TypeVar("R", bound="Record")


class Record:
    """Mixin for dataclasses: `to_json` and `from_json` (subclasses with a JSON shape of their own override both)."""

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in _fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            out[f.name] = encode(value)
        return out

    @classmethod
    def from_json(cls: type[R], data: Mapping[str, Any]) -> R:
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in _fields(cls):
            if f.name in data:
                kwargs[f.name] = decode(hints[f.name], data[f.name], f"{cls.__name__}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KeyError(f"{cls.__name__}: {f.name!r} missing from the JSON (keys: {sorted(data)})")
        return cls(**kwargs)


def _fields(obj: object) -> tuple[dataclasses.Field[Any], ...]:
    if not dataclasses.is_dataclass(obj):
        raise TypeError(f"{obj!r} is not a dataclass: a Record must be one")
    return dataclasses.fields(obj)


def encode(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(tp: Any, value: Any, where: str = "") -> Any:
    """`value` (parsed JSON) as the type `tp` says."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_json(value)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (only,) = [a for a in args if a is not type(None)]  # one type besides None: a record decodes itself
        return decode(only, value, where)
    if origin is list:
        return [decode(args[0], v, where) for v in value]
    if origin is tuple:
        return tuple(decode(args[0], v, where) for v in value)
    if origin is dict:
        return {decode(args[0], k, where): decode(args[1], v, where) for k, v in value.items()}
    if tp is float:
        return float(value)
    if tp is int:
        return int(value)
    if tp in (str, bool) or tp is Any:
        return value
    raise TypeError(f"{where}: cannot read a {tp!r} from JSON")
