"""Alertmanager label matchers: `name="value"`, `name!=value`, `name=~"re"`, `name!~"re"`.

The syntax is that of Alertmanager's `matcher/parse` package (v0.27+): optional braces,
comma-separated matchers, a trailing comma allowed, label names and values either quoted
(Go string escapes) or unquoted (any run of characters that are not whitespace or one of
``{}!=~,\\"'` ``). Label names are classic Prometheus names.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

OPERATORS = ("=", "!=", "=~", "!~")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RESERVED = frozenset("{}!=~,\\\"'`")


def is_label_name(name: str) -> bool:
    """True if `name` is a valid Prometheus label name."""
    return LABEL_NAME_RE.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher; regexes are fully anchored, as in Alertmanager."""

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown matcher operator {self.op!r}: use =, !=, =~ or !~")
        if not is_label_name(self.name):
            raise ValueError(f"bad label name {self.name!r}: must match [a-zA-Z_][a-zA-Z0-9_]*")
        if self.op in ("=~", "!~"):
            try:
                with warnings.catch_warnings():
                    # `[[` and the like warn of a possible future change of Python's regex
                    # syntax; today they mean what they say, and a config check should not
                    # print a Python warning for them.
                    warnings.simplefilter("ignore", FutureWarning)
                    compiled = re.compile(self.value)
            except re.error as exc:
                raise ValueError(
                    f"bad regex {quote_for_message(self.value)} for label {self.name!r}: {exc}"
                ) from None
            # A frozen dataclass still needs its derived state set once.
            object.__setattr__(self, "_regex", compiled)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy this matcher; a missing label counts as the empty string."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value, ensure_ascii=False)}"


class _Token:
    __slots__ = ("kind", "text", "value", "col")

    def __init__(self, kind: str, text: str, value: str, col: int) -> None:
        self.kind = kind  # "{", "}", ",", "op", "quoted", "unquoted", "end"
        self.text = text
        self.value = value
        self.col = col  # 1-based column in the input

    def describe(self) -> str:
        return "end of input" if self.kind == "end" else quote_for_message(self.text)


_SIMPLE_ESCAPES = {
    "a": 0x07,
    "b": 0x08,
    "f": 0x0C,
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    "v": 0x0B,
    "\\": 0x5C,
    '"': 0x22,
}
_HEX_LENGTH = {"x": 2, "u": 4, "U": 8}


def _unquote(body: str, col: int) -> str:
    """Decode the inside of a double-quoted string with Go's escape rules."""
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        esc = body[i + 1] if i + 1 < len(body) else ""
        where = f"at column {col + 1 + i}"
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc in _HEX_LENGTH:
            digits = body[i + 2 : i + 2 + _HEX_LENGTH[esc]]
            if len(digits) != _HEX_LENGTH[esc] or not all(
                c in "0123456789abcdefABCDEF" for c in digits
            ):
                raise ValueError(f"invalid \\{esc} escape {where}")
            number = int(digits, 16)
            if esc == "x":
                out.append(number)
            else:
                if number > 0x10FFFF or 0xD800 <= number <= 0xDFFF:
                    raise ValueError(f"\\{esc}{digits} is not a valid code point {where}")
                out += chr(number).encode("utf-8")
            i += 2 + len(digits)
        elif esc and esc in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or not all(c in "01234567" for c in digits):
                raise ValueError(f"invalid octal escape {where}")
            number = int(digits, 8)
            if number > 255:
                raise ValueError(f"octal escape above \\377 {where}")
            out.append(number)
            i += 4
        else:
            shown = f"\\{esc}" if esc else "\\"
            raise ValueError(f"invalid escape '{shown}' {where}")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"quoted string at column {col} is not valid UTF-8") from None


def quote_for_message(text: str) -> str:
    """Quote user text for an error message without doubling its backslashes."""
    if "'" in text or not text.isprintable():
        return repr(text)
    return f"'{text}'"


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        col = i + 1
        if ch.isspace():
            i += 1
        elif ch in "{},":
            tokens.append(_Token(ch, ch, ch, col))
            i += 1
        elif ch == "=":
            op = "=~" if text.startswith("=~", i) else "="
            tokens.append(_Token("op", op, op, col))
            i += len(op)
        elif ch == "!":
            if i + 1 < n and text[i + 1] in "=~":
                op = text[i : i + 2]
                tokens.append(_Token("op", op, op, col))
                i += 2
            else:
                raise ValueError(f"'!' at column {col} must be followed by = or ~")
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ValueError(f"unterminated quoted string starting at column {col}")
            raw = text[i : j + 1]
            tokens.append(_Token("quoted", raw, _unquote(text[i + 1 : j], col), col))
            i = j + 1
        elif ch in _RESERVED:
            hint = " (quote values that contain it)" if ch in "\\'`" else ""
            raise ValueError(f"unexpected {quote_for_message(ch)} at column {col}{hint}")
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _RESERVED:
                j += 1
            word = text[i:j]
            tokens.append(_Token("unquoted", word, word, col))
            i = j
    tokens.append(_Token("end", "", "", n + 1))
    return tokens


def parse_matchers(text: str) -> list[Matcher]:
    """Parse one entry of a `matchers:` list, e.g. `{env="prod", severity=~"crit.*"}`.

    Raises ValueError naming the problem and its column (bad operator, bad label name, bad
    regex, unterminated quote, stray brace or comma, no matcher at all).
    """
    try:
        return _parse(text)
    except ValueError as exc:
        raise ValueError(f"bad matcher {quote_for_message(text)}: {exc}") from None


def _parse(text: str) -> list[Matcher]:
    tokens = _tokens(text)
    pos = 0

    def fail(token: _Token, expected: str) -> ValueError:
        return ValueError(
            f"unexpected {token.describe()} at column {token.col}, expected {expected}"
        )

    braced = tokens[0].kind == "{"
    if braced:
        pos = 1
    result: list[Matcher] = []
    while True:
        tok = tokens[pos]
        if tok.kind == "}":
            if not braced:
                raise ValueError(f"'}}' at column {tok.col} has no opening brace")
            pos += 1
            break
        if tok.kind == "end":
            if braced:
                raise ValueError(f"missing closing brace at column {tok.col}")
            break
        if tok.kind not in ("quoted", "unquoted"):
            raise fail(tok, "a label name")
        name = tok.value
        if not is_label_name(name):
            raise ValueError(
                f"bad label name {quote_for_message(name)} at column {tok.col}:"
                " must match [a-zA-Z_][a-zA-Z0-9_]*"
            )
        op_tok = tokens[pos + 1]
        if op_tok.kind != "op":
            raise fail(op_tok, f"an operator (=, !=, =~, !~) after {name!r}")
        value_tok = tokens[pos + 2]
        if value_tok.kind in ("end", ",", "}"):
            raise ValueError(f"missing value after '{name}{op_tok.text}' at column {value_tok.col}")
        if value_tok.kind not in ("quoted", "unquoted"):
            raise fail(value_tok, f"a value after '{name}{op_tok.text}'")
        result.append(Matcher(name, op_tok.text, value_tok.value))
        pos += 3
        sep = tokens[pos]
        if sep.kind == ",":
            pos += 1
        elif sep.kind not in ("}", "end"):
            raise fail(sep, "',' or '}'" if braced else "','")
    if tokens[pos].kind != "end":
        raise fail(tokens[pos], "end of input")
    if not result:
        raise ValueError("no matcher given")
    return result


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """True if every matcher holds for `labels` (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
