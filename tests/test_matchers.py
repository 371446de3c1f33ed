"""Alertmanager matcher syntax and semantics (cases from AM's matcher/parse and labels tests)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import TypeAdapter

from router.config.schema import Matchers
from router.matchers import Matcher, matches_all, parse_matchers


def triples(text: str) -> list[tuple[str, str, str]]:
    return [(m.name, m.op, m.value) for m in parse_matchers(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{foo="bar"}', [("foo", "=", "bar")]),
        ('{foo=~"bar.*"}', [("foo", "=~", "bar.*")]),
        ('{foo!="bar"}', [("foo", "!=", "bar")]),
        ('{foo!~"bar.*"}', [("foo", "!~", "bar.*")]),
        ('foo="bar"', [("foo", "=", "bar")]),
        ("foo=bar", [("foo", "=", "bar")]),
        ("{foo=bar,}", [("foo", "=", "bar")]),
        ("foo=bar,", [("foo", "=", "bar")]),
        ("foo=~[a-z]+", [("foo", "=~", "[a-z]+")]),
        ('{foo=""}', [("foo", "=", "")]),
        ('{"foo"="bar"}', [("foo", "=", "bar")]),
        (
            '{foo="bar", baz!~"quux.*", derp="wat"}',
            [("foo", "=", "bar"), ("baz", "!~", "quux.*"), ("derp", "=", "wat")],
        ),
        ("foo=bar,dings!=bums", [("foo", "=", "bar"), ("dings", "!=", "bums")]),
        ('{foo = "bar", dings != "bums", }', [("foo", "=", "bar"), ("dings", "!=", "bums")]),
        ('{foo="bar,quux", job="job1"}', [("foo", "=", "bar,quux"), ("job", "=", "job1")]),
        ('{foo="a}b{c"}', [("foo", "=", "a}b{c")]),
        ('statuscode=~"5.."', [("statuscode", "=~", "5..")]),
        (
            r'{quote="She said: \"Hi, ladies! That\u0027s gender-neutral…\""}',
            [("quote", "=", 'She said: "Hi, ladies! That\'s gender-neutral…"')],
        ),
        (
            r'contains_quote != "\"" , contains_comma !~ "foo,bar" , ',
            [("contains_quote", "!=", '"'), ("contains_comma", "!~", "foo,bar")],
        ),
        ("{foo=🙂}", [("foo", "=", "🙂")]),
        ("{foo=🙂bar}", [("foo", "=", "🙂bar")]),
        ('{"foo"="🙂"}', [("foo", "=", "🙂")]),
        (r'{"foo"="\xf0\x9f\x99\x82"}', [("foo", "=", "🙂")]),
        (r'{"foo"="\U0001f642"}', [("foo", "=", "🙂")]),
        (r'{foo="bar\n"}', [("foo", "=", "bar\n")]),
        (r'{foo="bar\t"}', [("foo", "=", "bar\t")]),
        (r'{foo="bar\\"}', [("foo", "=", "bar\\")]),
        (r'{foo="\101"}', [("foo", "=", "A")]),
        ("  env = prod  ", [("env", "=", "prod")]),
        ('severity=~"critical|warning"', [("severity", "=~", "critical|warning")]),
    ],
)
def test_parses_alertmanager_matcher_syntax(
    text: str, expected: list[tuple[str, str, str]]
) -> None:
    assert triples(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("job=", "bad matcher 'job=': missing value after 'job=' at column 5"),
        (
            'job="value',
            "bad matcher 'job=\"value': unterminated quoted string starting at column 5",
        ),
        ('job=value"', "unterminated quoted string starting at column 10"),
        ('{invalid-name = "valid label"}', "bad label name 'invalid-name' at column 2"),
        ('{"9lives"="x"}', "bad label name '9lives' at column 2"),
        ('{foo=~"invalid[regexp"}', "bad regex 'invalid[regexp' for label 'foo'"),
        ("foo=bar}", "'}' at column 8 has no opening brace"),
        ("{foo=bar", "missing closing brace at column 9"),
        ("{", "missing closing brace at column 2"),
        (",", "unexpected ',' at column 1, expected a label name"),
        ("{,}", "unexpected ',' at column 2, expected a label name"),
        ('{foo=:"bar"}', "unexpected '\"bar\"' at column 7, expected ',' or '}'"),
        (r'{foo="bar\w"}', r"invalid escape '\w' at column 10"),
        (r"{foo=bar\n}", r"unexpected '\' at column 9 (quote values that contain it)"),
        (r'{"foo"="\xf0\x9f"}', "quoted string at column 8 is not valid UTF-8"),
        ("foo==bar", "unexpected '=' at column 5, expected a value after 'foo='"),
        ("foo=~~~", "unexpected '~' at column 6"),
        ("foo!bar", "'!' at column 4 must be followed by = or ~"),
        ("foo bar", "expected an operator (=, !=, =~, !~) after 'foo'"),
        ("foo=bar baz=qux", "unexpected 'baz' at column 9, expected ','"),
        ("{a=b} c=d", "unexpected 'c' at column 7, expected end of input"),
        ('"{foo=\\"bar\\"}"', "bad label name '{foo=\"bar\"}' at column 1"),
        ("", "no matcher given"),
        ("{}", "no matcher given"),
    ],
)
def test_rejects_bad_matchers_with_a_precise_message(text: str, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_matchers(text)
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith("bad matcher ")


def test_missing_label_matches_as_empty_string() -> None:
    labels = {"env": "prod"}
    assert Matcher("team", "=", "").matches(labels)
    assert not Matcher("team", "=", "shop").matches(labels)
    assert Matcher("team", "!=", "shop").matches(labels)
    assert Matcher("team", "!~", ".+").matches(labels)
    assert Matcher("team", "=~", "").matches(labels)
    assert Matcher("team", "=~", ".*").matches(labels)
    assert not Matcher("team", "=~", ".+").matches(labels)


def test_regexes_are_fully_anchored() -> None:
    critical_or_warning = parse_matchers('severity=~"critical|warning"')[0]
    assert critical_or_warning.matches({"severity": "critical"})
    assert critical_or_warning.matches({"severity": "warning"})
    assert not critical_or_warning.matches({"severity": "critical-ish"})
    assert not critical_or_warning.matches({"severity": "notwarning"})
    team = Matcher("owner", "=~", "team-(B|C)")
    assert team.matches({"owner": "team-C"})
    assert not team.matches({"owner": "team-Cx"})
    assert not team.matches({"owner": "xteam-C"})
    assert Matcher("owner", "!~", "team-(B|C)").matches({"owner": "team-Cx"})


def test_regex_flags_like_case_insensitivity_are_honoured() -> None:
    assert parse_matchers('env=~"(?i)PROD"')[0].matches({"env": "prod"})


def test_regex_is_compiled_once_not_per_match(monkeypatch: pytest.MonkeyPatch) -> None:
    matcher = Matcher("env", "=~", "prod|stage")
    calls: list[Any] = []
    real_compile: Callable[..., Any] = re.compile

    def counting_compile(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real_compile(*args, **kwargs)

    monkeypatch.setattr(re, "compile", counting_compile)
    for _ in range(5):
        assert matcher.matches({"env": "prod"})
    assert calls == []


def test_str_prints_the_value_json_quoted_like_alertmanager() -> None:
    assert str(Matcher("env", "=", "prod")) == 'env="prod"'
    assert str(Matcher("severity", "=~", "critical|warning")) == 'severity=~"critical|warning"'
    assert str(Matcher("quote", "!=", 'say "hi"\n')) == 'quote!="say \\"hi\\"\\n"'
    assert str(Matcher("emoji", "=", "🙂")) == 'emoji="🙂"'


@pytest.mark.parametrize(
    "matcher",
    [
        Matcher("a", "=", 'x,"y"}'),
        Matcher("b", "!~", r"\d+\\"),
        Matcher("c", "=", "tab\tnewline\nbell\a"),
        Matcher("d", "!=", ""),
        Matcher("e", "=~", "🙂|ü"),
    ],
)
def test_str_round_trips_through_the_parser(matcher: Matcher) -> None:
    assert parse_matchers(str(matcher)) == [matcher]


def test_matchers_are_values_usable_in_sets() -> None:
    assert Matcher("env", "=~", "a|b") == Matcher("env", "=~", "a|b")
    assert len({Matcher("env", "=", "x"), Matcher("env", "=", "x")}) == 1


@pytest.mark.parametrize(
    ("name", "op", "value", "message"),
    [
        ("env", "==", "x", "unknown matcher operator '=='"),
        ("bad-name", "=", "x", "bad label name 'bad-name'"),
        ("env", "=~", "(", "bad regex '(' for label 'env'"),
    ],
)
def test_constructing_an_invalid_matcher_raises(
    name: str, op: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Matcher(name, op, value)


# A `matchers:` list as the config schema reads it.
MATCHER_LIST: TypeAdapter[tuple[Matcher, ...]] = TypeAdapter(Matchers)


def test_a_matcher_list_is_the_conjunction_of_all_entries() -> None:
    entries = ['env="prod"', "{severity=~critical|warning, team!=ops}"]
    matchers = MATCHER_LIST.validate_python(entries)
    assert [str(m) for m in matchers] == [
        'env="prod"',
        'severity=~"critical|warning"',
        'team!="ops"',
    ]
    assert matches_all(matchers, {"env": "prod", "severity": "warning"})
    assert not matches_all(matchers, {"env": "prod", "severity": "warning", "team": "ops"})
    assert not matches_all(matchers, {"env": "dev", "severity": "warning"})


def test_an_empty_matcher_list_matches_everything() -> None:
    assert matches_all([], {})
    assert matches_all(MATCHER_LIST.validate_python([]), {"anything": "x"})
