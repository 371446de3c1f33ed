"""Alertmanager matchers read as Alertmanager reads them, written as alert-router matchers.

A `matchers:` entry is read the way Alertmanager's default ("fallback") mode does: with the
classic parser of Alertmanager 0.25 and earlier whenever that one accepts the text, else with
the newer parser (alert-router's own syntax). Both agree on properly quoted input; they
differ on escapes: the classic parser keeps `\\.` as a backslash and a dot, the new one
refuses it. Values are then written back double-quoted with Go escapes, which both read the
same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from router.importer.goregex import UntranslatableRegex, translate
from router.matchers import Matcher, is_label_name, parse_matchers

# Alertmanager's pkg/labels matcher regex, with Go's ASCII-only \s and end-of-text $.
_CLASSIC_RE = re.compile(
    r"^[\t\n\f\r ]*([a-zA-Z_:][a-zA-Z0-9_:]*)[\t\n\f\r ]*(=~|=|!=|!~)[\t\n\f\r ]*((?s:.*?))"
    r"[\t\n\f\r ]*\Z"
)


@dataclass(frozen=True, slots=True)
class SourceMatcher:
    """One matcher as Alertmanager holds it: a regex value is Go regex text."""

    name: str
    op: str
    value: str

    def __str__(self) -> str:
        quoted = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{quoted}"'


def _classic_one(text: str) -> SourceMatcher:
    found = _CLASSIC_RE.match(text)
    if found is None:
        raise ValueError(f"bad matcher format: {text}")
    name, op, raw = found.group(1), found.group(2), found.group(3)
    expect_trailing_quote = raw.startswith('"')
    if expect_trailing_quote:
        raw = raw[1:]
    value: list[str] = []
    escaped = False
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            if ch == "n":
                value.append("\n")
            elif ch in '"\\':
                value.append(ch)
            else:
                # A spurious escape: the backslash is kept as it is.
                value.append("\\" + ch)
            continue
        if ch == "\\":
            if i < len(raw) - 1:
                escaped = True
                continue
            value.append("\\")
        elif ch == '"':
            if not expect_trailing_quote or i < len(raw) - 1:
                raise ValueError(f"matcher value contains unescaped double quote: {text}")
            expect_trailing_quote = False
        else:
            value.append(ch)
    if expect_trailing_quote:
        raise ValueError(f"matcher value contains unescaped double quote: {text}")
    return SourceMatcher(name, op, "".join(value))


def parse_classic(text: str) -> list[SourceMatcher]:
    """Alertmanager's classic `ParseMatchers`: optional braces, commas outside quotes."""
    body = text.removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    token: list[str] = []
    inside_quotes = False
    escaped = False
    for ch in body:
        if ch == "," and not inside_quotes:
            tokens.append("".join(token))
            token = []
            continue
        if ch == '"':
            if not escaped:
                inside_quotes = not inside_quotes
            else:
                escaped = False
        elif ch == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(ch)
    last = "".join(token).strip()
    if last:
        tokens.append(last)
    return [_classic_one(token) for token in tokens]


def parse_source_matchers(text: str) -> list[SourceMatcher]:
    """One `matchers:` entry of an Alertmanager config; ValueError if neither parser reads it."""
    try:
        return parse_classic(text)
    except ValueError as classic_error:
        try:
            modern = parse_matchers(text)
        except ValueError:
            raise classic_error from None
    return [SourceMatcher(m.name, m.op, m.value) for m in modern]


class UnsupportedMatcher(ValueError):
    """A matcher alert-router cannot express with the same meaning."""


def to_router(matcher: SourceMatcher) -> str:
    """The alert-router matcher text with the same meaning as `matcher`."""
    if not is_label_name(matcher.name):
        raise UnsupportedMatcher(
            f"label name {matcher.name!r} is not one alert-router matches on"
            " (letters, digits and _ only)"
        )
    value = matcher.value
    if matcher.op in ("=~", "!~"):
        try:
            value = translate(value)
        except UntranslatableRegex as exc:
            raise UnsupportedMatcher(f"regex {matcher.value!r}: {exc}") from None
    return str(Matcher(matcher.name, matcher.op, value))
