"""An Alertmanager config file as Alertmanager's YAML library reads it, with line numbers.

Alertmanager decodes its config with Go's yaml.v2 into typed fields, and a string field
gets a plain scalar's text exactly as written: `start_time: 10:00` is the clock time
`10:00` (never the sexagesimal 600), `match: {code: 0404}` matches `0404`, and `null` (or
nothing) is the empty string or an empty list. The nodes here keep that text, the line each
value is on (for the report), and the YAML node itself (to write the forwarding config with
every value untouched).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import yaml

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
# yaml.v2's booleans.
_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_FALSE = frozenset({"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class Malformed(ValueError):
    """A value of the wrong shape (a list where a string belongs, ...), at a line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, slots=True)
class Node:
    """One YAML value; `offset` shifts line numbers of a document embedded in another."""

    raw: yaml.Node
    offset: int = 0

    @property
    def line(self) -> int:
        """The 1-based line the value starts on, in the file the user gave."""
        mark = self.raw.start_mark
        return (mark.line + 1 if mark is not None else 1) + self.offset

    def _wrap(self, raw: yaml.Node) -> Node:
        return Node(raw, self.offset)

    @property
    def is_null(self) -> bool:
        """True for `~`, `null` or a key with no value."""
        raw = self.raw
        if not isinstance(raw, yaml.ScalarNode):
            return False
        return raw.tag == _NULL_TAG or (raw.style is None and raw.value in _NULLS)

    @property
    def is_map(self) -> bool:
        return isinstance(self.raw, yaml.MappingNode)

    @property
    def is_seq(self) -> bool:
        return isinstance(self.raw, yaml.SequenceNode)

    def text(self, what: str = "value") -> str:
        """A string value as written; null is the empty string."""
        if self.is_null:
            return ""
        if not isinstance(self.raw, yaml.ScalarNode):
            raise Malformed(self.line, f"{what} must be a string")
        value: str = self.raw.value
        return value

    def flag(self, what: str = "value") -> bool:
        """A yaml.v2 boolean (`true`, `yes`, `on`, ...); null is false."""
        if self.is_null:
            return False
        raw = self.raw
        if isinstance(raw, yaml.ScalarNode) and raw.style is None:
            if raw.value in _TRUE:
                return True
            if raw.value in _FALSE:
                return False
        raise Malformed(self.line, f"{what} must be true or false")

    def items(self, what: str = "value") -> list[tuple[str, Node]]:
        """A mapping's entries in file order; null is an empty mapping."""
        if self.is_null:
            return []
        raw = self.raw
        if not isinstance(raw, yaml.MappingNode):
            raise Malformed(self.line, f"{what} must be a mapping")
        out: list[tuple[str, Node]] = []
        for key, value in raw.value:
            if not isinstance(key, yaml.ScalarNode):
                raise Malformed(self.line, f"{what} has a key that is not a string")
            out.append((key.value, self._wrap(value)))
        return out

    def get(self, key: str) -> Node | None:
        """The value under `key` of a mapping, None if absent (null is a value)."""
        if not self.is_map:
            return None
        for name, value in self.items():
            if name == key:
                return value
        return None

    def key_line(self, key: str) -> int:
        """The line of `key` in this mapping (this value's own line if it is absent)."""
        raw = self.raw
        if isinstance(raw, yaml.MappingNode):
            for key_node, _value in raw.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                    return Node(key_node, self.offset).line
        return self.line

    def seq(self, what: str = "value") -> list[Node]:
        """A list's items; null is an empty list."""
        if self.is_null:
            return []
        raw = self.raw
        if not isinstance(raw, yaml.SequenceNode):
            raise Malformed(self.line, f"{what} must be a list")
        return [self._wrap(item) for item in raw.value]

    def strings(self, what: str = "value") -> list[str]:
        """A list of strings; null is an empty list."""
        return [item.text(f"each item of {what}") for item in self.seq(what)]


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, used only to compose nodes and flatten `<<` merge keys."""


def _flatten(loader: _Loader, root: yaml.Node) -> None:
    """Resolve `<<` merges everywhere; a key given after a merge overrides the merged one."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            if any(key.tag == _MERGE_TAG for key, _ in node.value):
                loader.flatten_mapping(node)
                last: dict[str, int] = {}
                for index, (key, _value) in enumerate(node.value):
                    if isinstance(key, yaml.ScalarNode):
                        last[key.value] = index
                node.value = [
                    pair
                    for index, pair in enumerate(node.value)
                    if not isinstance(pair[0], yaml.ScalarNode) or last[pair[0].value] == index
                ]
            stack.extend(value for _key, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


class SyntaxProblem(ValueError):
    """The text is not YAML; the message names line and column."""


def compose(text: str, offset: int = 0) -> Iterator[Node]:
    """Every document of a YAML stream, as nodes (an empty document is skipped)."""
    loader = _Loader(text)
    try:
        while loader.check_node():
            raw = loader.get_node()
            if raw is None:
                continue
            _flatten(loader, raw)
            yield Node(raw, offset)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1 + offset}:{mark.column + 1}" if mark is not None else "1:1"
        # Only the problem itself: PyYAML's snippet of the line could show a secret.
        parts = [p for p in (exc.context, exc.problem) if p]
        raise SyntaxProblem(f"{where}: YAML syntax error: {', '.join(parts)}") from None
    except yaml.YAMLError as exc:
        raise SyntaxProblem(f"1:1: YAML error: {exc}") from None
    finally:
        loader.dispose()
