"""Matchers fuzzed: any text parses into matchers or fails with a ValueError, and what a
matcher prints parses back to the same matcher."""

from __future__ import annotations

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from router.matchers import OPERATORS, Matcher, parse_matchers
from tests.fuzzing import FUZZ, TIMEOUT

pytestmark = pytest.mark.timeout(TIMEOUT)

names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True)
# Everything the quoting has to survive: quotes, backslashes, braces, commas, operators,
# control characters, non-ASCII, and text that looks like an escape.
values = st.lists(
    st.characters(codec="utf-8")
    | st.sampled_from(list('"\\{},=!~ \t\n\r\x00\x7f\u2028') + ["\\n", "\\x41", "\\u00e9"]),
    max_size=16,
).map("".join)
# Small regexes that compile: alternations, classes, groups, anchors, quantifiers.
regexes = st.lists(
    st.sampled_from(["a", "b", ".", ".*", "|", "(x)", "[a-z]", "\\d", "^", "$", "+", "?", '"']),
    max_size=6,
).map("".join)
matcher_text = st.lists(
    st.sampled_from(list("abz_09 ={}!~,\"\\'`\t") + ["=~", "!=", "!~", '"\\"', "é", "\x00"]),
    max_size=30,
).map("".join) | st.text(max_size=30)


@st.composite
def matchers(draw: st.DrawFn) -> Matcher:
    op = draw(st.sampled_from(OPERATORS))
    value = draw(regexes | values) if op in ("=~", "!~") else draw(values)
    try:
        return Matcher(draw(names), op, value)
    except ValueError:
        reject()  # a regex that does not compile: not a matcher


@FUZZ
@given(text=matcher_text)
def test_any_text_is_matchers_or_a_value_error(text: str) -> None:
    try:
        parsed = parse_matchers(text)
    except ValueError as exc:
        assert str(exc).startswith("bad matcher ")
        return
    assert parsed and all(isinstance(m, Matcher) for m in parsed)
    # What parsed prints back to itself, too.
    for matcher in parsed:
        assert parse_matchers(str(matcher)) == [matcher]


@FUZZ
@given(matcher=matchers())
def test_what_a_matcher_prints_parses_back_to_the_same_matcher(matcher: Matcher) -> None:
    assert parse_matchers(str(matcher)) == [matcher]


@FUZZ
@given(group=st.lists(matchers(), min_size=1, max_size=4), trailing=st.booleans())
def test_printed_matchers_in_braces_parse_back_in_order(
    group: list[Matcher], trailing: bool
) -> None:
    text = "{" + ", ".join(str(m) for m in group) + ("," if trailing else "") + "}"
    assert parse_matchers(text) == group


@FUZZ
@given(matcher=matchers(), labels=st.dictionaries(names, values, max_size=4))
def test_a_parsed_matcher_matches_as_the_one_it_was_printed_from(
    matcher: Matcher, labels: dict[str, str]
) -> None:
    [again] = parse_matchers(str(matcher))
    assert again.matches(labels) == matcher.matches(labels)
