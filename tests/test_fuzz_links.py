"""Silence links fuzzed: the encoded filter is exactly `quote(..., safe="")` of the
JSON-quoted matchers, whichever way (cached, unreserved text, escaped) a pair is encoded."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.enrich.links import silence_url
from tests.fuzzing import FUZZ, TIMEOUT

pytestmark = pytest.mark.timeout(TIMEOUT)

# Unreserved text takes a shortcut; the rest is quoted, escaped and percent-encoded,
# non-ASCII by its UTF-8 bytes.
unreserved = st.from_regex(r"[A-Za-z0-9_.~-]{0,12}", fullmatch=True)
anything = st.text(
    st.characters(codec="utf-8") | st.sampled_from(list('"\\{},=:/%+ \t\n\x00\x7f\x80\u2028é中😀')),
    max_size=12,
)
labels = st.dictionaries(
    unreserved | anything | st.just("alertname"), unreserved | anything, max_size=8
)


def expected(external_url: str, labels: dict[str, str]) -> str:
    names = sorted(labels, key=lambda name: (name != "alertname", name))
    body = ", ".join(f"{name}={json.dumps(labels[name], ensure_ascii=False)}" for name in names)
    base = external_url.strip().rstrip("/")
    return f"{base}/#/silences/new?filter={quote('{' + body + '}', safe='')}"


@FUZZ
@given(labels=labels, external_url=st.sampled_from(["http://am:9093", " http://am/x/ "]))
def test_silence_url_is_quote_of_the_json_quoted_matchers(
    labels: dict[str, str], external_url: str
) -> None:
    want = expected(external_url, labels)
    assert silence_url(external_url, labels) == want
    # Again, now that its pairs are cached.
    assert silence_url(external_url, labels) == want
