"""Small JSON records on disk, typed: a dataclass written is read back as the same dataclass.

The nightly run's plan and per-file facts, and the retention journal, are handed from one process to the
next as files (Airflow tasks share no memory). Writing goes through `commit_file`, so a reader sees a
whole record or none; reading rebuilds the declared types (nested dataclasses, tuples, dates), so a field
renamed or added on one side fails loudly instead of shifting values.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from transforms.lake.commit import commit_file
from transforms.lake.permissions import make_dirs

T = TypeVar("T")


def write_json(path: Path, doc: Any) -> None:
    """Write `doc` (plain JSON values or dataclasses) so readers see the whole file or none of it."""
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(to_plain(doc), ensure_ascii=False, sort_keys=True))
    commit_file(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def read_record(path: Path, kind: type[T]) -> T:
    """The record at `path`, rebuilt as `kind` (a dataclass, or e.g. tuple[SomeRow, ...])."""
    return from_plain(kind, json.loads(path.read_text()))


def to_plain(value: Any) -> Any:
    """Dataclasses, tuples, dates → JSON values (field names kept)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def from_plain(kind: Any, value: Any) -> Any:
    """The inverse of `to_plain` for the type `kind`."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Annotated:
        return from_plain(args[0], value)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return from_plain(inner, value)
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind, include_extras=True)
        unknown = set(value) - {f.name for f in dataclasses.fields(kind)}
        if unknown:
            raise ValueError(f"{kind.__name__}: unknown field(s) {sorted(unknown)}")
        return kind(**{name: from_plain(hints[name], v) for name, v in value.items()})
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], v) for v in value)
        return tuple(from_plain(a, v) for a, v in zip(args, value, strict=True))
    if origin is list:
        return [from_plain(args[0], v) for v in value]
    if origin is dict:
        return {k: from_plain(args[1], v) for k, v in value.items()}
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is date:
        return date.fromisoformat(value)
    if kind is typing.Any or (kind is str and isinstance(value, str)) or (kind is bool and isinstance(value, bool)):
        return value
    # An int field takes a JSON integer only (1.5 would silently become 1); a float field takes either.
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected {getattr(kind, '__name__', kind)} in JSON, got {type(value).__name__}")
