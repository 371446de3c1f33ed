"""Go (RE2) regular expressions rewritten for Python's `re`, with the same meaning.

Alertmanager compiles matcher regexes with Go's `regexp`; alert-router with Python's `re`.
Most patterns mean the same in both, but not all: Go's `\\d`, `\\s`, `\\w` and POSIX classes
are ASCII where Python's are Unicode, Go has `\\z`, `\\Q...\\E`, `\\x{...}` and flags in the
middle of a pattern, treats `{,3}` as text, and reads `[` inside a class as a plain
character where Python warns about a nested set. The rewrite keeps a pattern as it was
written wherever the two agree, so an imported routes.yaml still reads like the original.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

# Go's Perl classes: always ASCII.
_PERL = {
    "d": "0-9",
    "s": "\\t\\n\\f\\r ",
    "w": "0-9A-Za-z_",
}
_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
# Escapes with the same meaning in both.
_SAME_ESCAPES = frozenset("AbBaftnrv")
_REPEAT_RE = re.compile(r"\{(\d+)(,(\d*))?\}")
_FLAGS_RE = re.compile(r"\(\?([imsU]*)(?:-([imsU]*))?([:)])")
# Go refuses repetition counts above this.
_MAX_REPEAT = 1000
# Characters a Python class needs escaped to be read literally (and without FutureWarning).
_CLASS_SPECIAL = frozenset("\\]^-[&~|")


class UntranslatableRegex(ValueError):
    """The Go pattern uses something Python's `re` cannot express the same way."""


@dataclass(slots=True)
class _Group:
    # Scoped flag groups opened by a bare `(?i)` inside this group: closed with it, and
    # closed and reopened around each `|` (Go's flags hold to the end of the group, across
    # alternatives).
    flag_scopes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _State:
    pattern: str
    pos: int = 0
    out: list[str] = field(default_factory=list)
    groups: list[_Group] = field(default_factory=lambda: [_Group()])

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.pattern[index] if index < len(self.pattern) else ""


def translate(pattern: str) -> str:
    """The Python pattern that matches exactly what Go matches with `pattern`.

    Raises UntranslatableRegex for what Python cannot express (Unicode classes like
    `\\p{Greek}`, the ungreedy flag `U`) and for patterns Go itself would refuse.
    """
    state = _State(pattern)
    while state.pos < len(pattern):
        _step(state)
    if len(state.groups) != 1:
        raise UntranslatableRegex("missing closing )")
    state.out.append(")" * len(state.groups[0].flag_scopes))
    result = "".join(state.out)
    _check_compiles(result)
    return result


def _check_compiles(result: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            re.compile(result)
        except (re.error, FutureWarning, DeprecationWarning) as exc:
            raise UntranslatableRegex(f"not a regex Python can read the same way: {exc}") from None


def _step(state: _State) -> None:
    ch = state.peek()
    if ch == "\\":
        state.out.append(_escape_outside(state))
    elif ch == "[":
        state.out.append(_char_class(state))
    elif ch == "(":
        _open_group(state)
    elif ch == ")":
        if len(state.groups) == 1:
            raise UntranslatableRegex(f"unexpected ) at position {state.pos}")
        group = state.groups.pop()
        state.out.append(")" * len(group.flag_scopes) + ")")
        state.pos += 1
    elif ch == "|":
        scopes = state.groups[-1].flag_scopes
        state.out.append(")" * len(scopes) + "|" + "".join(f"(?{s}:" for s in scopes))
        state.pos += 1
    elif ch == "{":
        repeat = _REPEAT_RE.match(state.pattern, state.pos)
        if repeat is None:
            # Go reads a brace that does not start a valid repetition as text; Python
            # would take `{,3}` for one.
            state.out.append("\\{")
            state.pos += 1
            return
        low, high = repeat.group(1), repeat.group(3)
        if int(low) > _MAX_REPEAT or (high and int(high) > _MAX_REPEAT):
            raise UntranslatableRegex(f"repeat count above {_MAX_REPEAT} in {repeat.group(0)}")
        state.out.append(repeat.group(0))
        state.pos = repeat.end()
    else:
        state.out.append(ch)
        state.pos += 1


def _open_group(state: _State) -> None:
    if state.peek(1) != "?":
        state.groups.append(_Group())
        state.out.append("(")
        state.pos += 1
        return
    rest = state.pattern[state.pos :]
    if rest.startswith(("(?<=", "(?<!", "(?=", "(?!")):
        raise UntranslatableRegex("lookaround assertions are not regular expressions Go reads")
    for prefix in ("(?P<", "(?<"):
        if rest.startswith(prefix):
            close = rest.find(">")
            if close < 0:
                raise UntranslatableRegex("unterminated group name")
            # Names do not change what matches; Python's rules for them differ from Go's.
            state.groups.append(_Group())
            state.out.append("(")
            state.pos += close + 1
            return
    flags = _FLAGS_RE.match(state.pattern, state.pos)
    if flags is None:
        raise UntranslatableRegex(f"unsupported group syntax at position {state.pos}")
    on, off, end = flags.group(1), flags.group(2), flags.group(3)
    if "U" in on or (off and "U" in off):
        raise UntranslatableRegex("the ungreedy flag U has no Python equivalent")
    if off == "" and flags.group(0).count("-"):
        raise UntranslatableRegex("missing flags after -")
    spec = on + (f"-{off}" if off else "")
    state.pos = flags.end()
    if end == ":":
        state.groups.append(_Group())
        state.out.append(f"(?{spec}:" if spec else "(?:")
        return
    if not spec:
        raise UntranslatableRegex("missing flags in (?)")
    if not state.out and len(state.groups) == 1 and not off:
        # At the very start both read it as flags for the whole pattern.
        state.out.append(f"(?{spec})")
        return
    # Go's `(?i)` sets flags up to the end of the enclosing group; Python only accepts
    # flags that way at the very start, so open a scoped group closed with the enclosing one.
    state.out.append(f"(?{spec}:")
    state.groups[-1].flag_scopes.append(spec)


def _code_point(state: _State) -> int | None:
    """A `\\x..`, `\\x{...}` or octal escape at state.pos, consumed; None if it is none."""
    text = state.pattern
    nxt = state.peek(1)
    if nxt == "x":
        if state.peek(2) == "{":
            end = text.find("}", state.pos + 3)
            digits = text[state.pos + 3 : end] if end > 0 else ""
            if not digits or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise UntranslatableRegex("invalid \\x{...} escape")
            state.pos = end + 1
        else:
            digits = text[state.pos + 2 : state.pos + 4]
            if len(digits) != 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise UntranslatableRegex("invalid \\x escape")
            state.pos += 4
        number = int(digits, 16)
        if number > 0x10FFFF:
            raise UntranslatableRegex("\\x escape beyond Unicode")
        return number
    if nxt and nxt in "01234567":
        start = state.pos + 1
        end = start + 1
        while end < len(text) and end < start + 3 and text[end] in "01234567":
            end += 1
        if nxt != "0" and end == start + 1:
            # `\1` alone would be a back reference, which Go does not have.
            raise UntranslatableRegex("back references are not supported")
        state.pos = end
        return int(text[start:end], 8)
    return None


def _literal(number: int) -> str:
    return re.escape(chr(number)) if chr(number).isprintable() else f"\\U{number:08x}"


def _escape_outside(state: _State) -> str:
    text = state.pattern
    nxt = state.peek(1)
    if not nxt:
        raise UntranslatableRegex("trailing backslash")
    if nxt == "Q":
        end = text.find("\\E", state.pos + 2)
        quoted = text[state.pos + 2 :] if end < 0 else text[state.pos + 2 : end]
        state.pos = len(text) if end < 0 else end + 2
        return "".join(_literal(ord(c)) for c in quoted)
    if nxt == "E":
        state.pos += 2  # a stray \E ends nothing: Go ignores it
        return ""
    if nxt == "z":
        state.pos += 2
        return "\\Z"
    if nxt in _PERL:
        state.pos += 2
        return f"[{_PERL[nxt]}]"
    if nxt.lower() in _PERL:
        state.pos += 2
        return f"[^{_PERL[nxt.lower()]}]"
    if nxt in "pP":
        raise UntranslatableRegex("Unicode classes (\\p, \\P) have no Python equivalent")
    number = _code_point(state)
    if number is not None:
        return _literal(number)
    state.pos += 2
    if nxt in _SAME_ESCAPES:
        return f"\\{nxt}"
    if nxt.isascii() and not nxt.isalnum():
        return f"\\{nxt}"
    raise UntranslatableRegex(f"invalid escape \\{nxt}")


def _class_literal(number: int) -> str:
    ch = chr(number)
    if ch in _CLASS_SPECIAL:
        return f"\\{ch}"
    return ch if ch.isprintable() else f"\\U{number:08x}"


@dataclass(slots=True)
class _ClassItems:
    parts: list[str] = field(default_factory=list)
    # A negated member (`\D`, `[:^alpha:]`) cannot be written inside a Python class; a
    # class made of one such member alone can be written as its complement.
    negated: list[str] = field(default_factory=list)


def _char_class(state: _State) -> str:
    text = state.pattern
    state.pos += 1
    negate = state.peek() == "^"
    if negate:
        state.pos += 1
    items = _ClassItems()
    first = True
    while True:
        ch = state.peek()
        if not ch:
            raise UntranslatableRegex("missing closing ]")
        if ch == "]" and not first:
            state.pos += 1
            break
        first = False
        if ch == "[" and state.peek(1) == ":":
            end = text.find(":]", state.pos + 2)
            name = text[state.pos + 2 : end] if end > 0 else ""
            bare = name.removeprefix("^")
            if end > 0 and bare in _POSIX:
                state.pos = end + 2
                (items.negated if name.startswith("^") else items.parts).append(_POSIX[bare])
                continue
        low = _class_char(state, items)
        if low is None:
            continue
        if state.peek() == "-" and state.peek(1) not in ("]", ""):
            state.pos += 1
            high = _class_char(state, items)
            if high is None:
                raise UntranslatableRegex("a class range cannot end in a class")
            if high < low:
                raise UntranslatableRegex("invalid character class range")
            items.parts.append(f"{_class_literal(low)}-{_class_literal(high)}")
        else:
            items.parts.append(_class_literal(low))
    if items.negated:
        if items.parts or len(items.negated) > 1:
            raise UntranslatableRegex(
                "a class mixing negated classes (\\D, \\S, \\W, [:^name:]) with other members"
            )
        return f"[{items.negated[0]}]" if negate else f"[^{items.negated[0]}]"
    return ("[^" if negate else "[") + "".join(items.parts) + "]"


def _class_char(state: _State, items: _ClassItems) -> int | None:
    """One member character at state.pos (consumed), or None when it was a whole class."""
    ch = state.peek()
    if ch != "\\":
        state.pos += 1
        return ord(ch)
    nxt = state.peek(1)
    if not nxt:
        raise UntranslatableRegex("trailing backslash")
    if nxt in _PERL:
        state.pos += 2
        items.parts.append(_PERL[nxt])
        return None
    if nxt.lower() in _PERL:
        state.pos += 2
        items.negated.append(_PERL[nxt.lower()])
        return None
    if nxt in "pP":
        raise UntranslatableRegex("Unicode classes (\\p, \\P) have no Python equivalent")
    number = _code_point(state)
    if number is not None:
        return number
    state.pos += 2
    simple = {"a": 7, "f": 12, "t": 9, "n": 10, "r": 13, "v": 11}
    if nxt in simple:
        return simple[nxt]
    if nxt.isascii() and not nxt.isalnum():
        return ord(nxt)
    raise UntranslatableRegex(f"invalid escape \\{nxt} in a class")
