"""Reading a YAML rule file strictly: a key given twice, a missing key or an unknown key is an error that
names its key path (`retention[2].keep: …`). The policy file and the source formats are read this way
(docs/design.md §1); each passes the error class its readers expect."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Hashable

import yaml

from transforms.policy.period import PolicyError


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                break   # SafeLoader reports an unhashable key itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path, what: str, error: type[Exception] = PolicyError) -> tuple[bytes, Any]:
    """The file's bytes and its parsed document; `what` names the file in errors ("policy file")."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"{what} {path}: cannot read ({exc.strerror})") from None
    try:
        return raw, yaml.load(raw, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = f": {exc.problem}" if getattr(exc, "problem", None) else ""
        raise error(f"{what} {path}: not valid YAML{where}{problem}") from None


class Section:
    """Typed access to one mapping of the YAML document, tracking its key path and the keys read."""

    def __init__(self, node: Any, key: str, what: str = "policy file", error: type[Exception] = PolicyError):
        if node is None:
            node = {}
        if not isinstance(node, dict):
            raise error(f"{key or what}: expected a mapping")
        self.node, self.key, self.what, self.error, self.used = node, key, what, error, set()

    def _path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def _get(self, name: str, required: bool) -> Any:
        self.used.add(name)
        if name not in self.node or self.node[name] is None:
            if required:
                raise self.error(f"{self._path(name)}: missing")
            return None
        return self.node[name]

    def keys(self) -> list[str]:
        self.used.update(self.node)
        return [str(k) for k in self.node]

    def section(self, name: str, required: bool = True) -> "Section":
        return Section(self._get(name, required), self._path(name), self.what, self.error)

    def items(self, name: str) -> list["Section"]:
        value = self._get(name, True)
        if not isinstance(value, list) or not value:
            raise self.error(f"{self._path(name)}: expected a non-empty list")
        return [Section(v, f"{self._path(name)}[{i}]", self.what, self.error) for i, v in enumerate(value)]

    def text(self, name: str, required: bool = True, pattern: str | None = None) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value).strip() == "":
            raise self.error(f"{self._path(name)}: expected a non-empty string")
        if pattern and not re.fullmatch(pattern, str(value)):
            raise self.error(f"{self._path(name)}: {value!r} does not match {pattern}")
        return str(value)

    def text_list(self, name: str, pattern: str | None = None) -> list[str]:
        value = self._get(name, True)
        if not isinstance(value, list) or not value:
            raise self.error(f"{self._path(name)}: expected a non-empty list")
        out = []
        for i, v in enumerate(value):
            if not isinstance(v, str) or (pattern and not re.fullmatch(pattern, v)):
                raise self.error(f"{self._path(name)}[{i}]: {v!r} is not a valid value")
            out.append(v)
        return out

    def integer(self, name: str, minimum: int) -> int:
        value = self._get(name, True)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.error(f"{self._path(name)}: expected an integer >= {minimum}, got {value!r}")
        return value

    def integer_list(self, name: str, minimum: int) -> list[int]:
        value = self._get(name, True)
        if not isinstance(value, list) or not value or any(
                not isinstance(v, int) or isinstance(v, bool) or v < minimum for v in value):
            raise self.error(f"{self._path(name)}: expected a non-empty list of integers >= {minimum}")
        return value

    def share(self, name: str, low: float, high: float) -> float:
        """A number with low <= value < high."""
        value = self._get(name, True)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value < high:
            raise self.error(f"{self._path(name)}: expected a number from {low} up to (not including)"
                              f" {high}, got {value!r}")
        return float(value)

    def flag(self, name: str) -> bool:
        """true or false, nothing else (YAML's 1 and "yes" are not a yes here)."""
        value = self._get(name, True)
        if not isinstance(value, bool):
            raise self.error(f"{self._path(name)}: expected true or false, got {value!r}")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], required: bool = True) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if value not in allowed:
            raise self.error(f"{self._path(name)}: {value!r} is not one of {', '.join(allowed)}")
        return value

    def no_extra_keys(self) -> None:
        extra = sorted(str(k) for k in self.node if k not in self.used)
        if extra:
            raise self.error(f"{self.key or self.what}: unknown key(s): {', '.join(extra)}")
