"""Deep links for an alert: Grafana Explore and dashboards, Alertmanager silence, Argo CD.

Pure functions, no I/O. URL formats are those of `facts/protocols.md` sections 1.5 (the
Alertmanager silence form) and 4 (Grafana Explore `schemaVersion=1&panes=`, dashboards).

Silence filter labels: an `Event` keeps only normalized labels, and normalization adds
`source` and overwrites `env` and `severity` (picked from other labels, aliased or
defaulted), so Alertmanager never saw those three as we hold them. `silence_matchers`
therefore drops `source` and, for `env` and `severity`, matches exactly the original values
that normalize to what we hold: the value itself when it can only have come verbatim from
the alert, otherwise a regex over the alias spellings (and the empty string when the label
may have been absent and the value synthesized), or nothing when the original is not
recoverable. The filter then selects this alert and only alerts indistinguishable from it
after normalization, never a wider set. Callers that still have the alert's own labels pass
them as `original_labels` and get plain equality matchers.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode, urlsplit

from router.config.schema import ArgoCDConfig, Config, GrafanaConfig, LabelSource
from router.ingest.normalize import ORIGINAL_PREFIX, original_labels
from router.model import Event
from router.render.message import Link
from router.routing.matchers import Matcher, matches_all, parse_matcher_list

# A Grafana Explore pane id: 3 characters of Grafana's ID_ALPHABET with at least one letter,
# or Grafana replaces it (migrators/v1.ts). A fixed id keeps our URLs deterministic.
EXPLORE_PANE_ID = "alr"

# Dashboard variables set from alert labels when the alert has them.
DASHBOARD_VARIABLES = ("namespace", "app")

# Labels our normalization adds or rewrites (router/sources/normalize.py).
SOURCE_LABEL = "source"
NORMALIZED_LABELS = ("env", "severity")

TITLE_LOGS = "Logs (Grafana Explore)"
TITLE_DASHBOARD = "Grafana dashboard"
TITLE_SILENCE = "Silence"
TITLE_SOURCE = "Source"
TITLE_RUNBOOK = "Runbook"
TITLE_ARGOCD = "Argo CD"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_URL_SCHEMES = frozenset({"http", "https"})
# Characters Go's regexp.QuoteMeta escapes: what Alertmanager's regex matchers treat as special.
_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def epoch_ms(when: datetime) -> int:
    """Milliseconds since the Unix epoch, exact (no float rounding); naive times are UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(milliseconds=1)


@functools.lru_cache(maxsize=4096)
def is_web_url(url: str) -> bool:
    """True for an absolute http(s) URL: the only links we hand to people."""
    # Cached: every alert of a storm carries the same few generator and runbook URLs.
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in _URL_SCHEMES and bool(parts.netloc)


def _base(url: str) -> str:
    return url.strip().rstrip("/")


def _query(params: Sequence[tuple[str, str]]) -> str:
    # %20 rather than `+` for spaces: both Grafana and Argo CD decode it the same way, and it
    # survives tools that do not treat `+` as a space.
    return urlencode(params, quote_via=quote, safe="")


def grafana_explore_url(grafana: GrafanaConfig, expr: str, start: datetime, end: datetime) -> str:
    """Grafana Explore showing the LogQL `expr` on the Loki datasource over [start, end]."""
    uid = grafana.loki_datasource_uid
    pane = {
        "datasource": uid,
        "queries": [{"refId": "A", "datasource": {"type": "loki", "uid": uid}, "expr": expr}],
        # Strings, not numbers: Grafana's v1 URL migrator type-checks them.
        "range": {"from": str(epoch_ms(start)), "to": str(epoch_ms(end))},
    }
    panes = json.dumps({EXPLORE_PANE_ID: pane}, separators=(",", ":"), ensure_ascii=False)
    params = [("schemaVersion", "1"), ("orgId", str(grafana.org_id)), ("panes", panes)]
    return f"{_base(grafana.url)}/explore?{_query(params)}"


@functools.lru_cache(maxsize=256)
def _parsed_matchers(items: tuple[str, ...]) -> list[Matcher]:
    # Config validation already parsed these once; caching keeps per-alert work to matching.
    return parse_matcher_list(items)


def grafana_dashboard_url(
    grafana: GrafanaConfig, labels: Mapping[str, str], start: datetime, end: datetime
) -> str | None:
    """The first `dashboards` entry whose matchers match `labels`, with variables and range.

    `var-namespace` and `var-app` are set only for labels the alert has; `None` when no
    entry matches.
    """
    for rule in grafana.dashboards:
        if not matches_all(_parsed_matchers(tuple(rule.matchers)), labels):
            continue
        params = [("orgId", str(grafana.org_id))]
        params += [(f"var-{n}", labels[n]) for n in DASHBOARD_VARIABLES if labels.get(n)]
        params += [("from", str(epoch_ms(start))), ("to", str(epoch_ms(end)))]
        return f"{_base(grafana.url)}/d/{quote(rule.uid, safe='')}?{_query(params)}"
    return None


def quote_regex(text: str) -> str:
    """`text` as a regex matching only itself (Go's regexp.QuoteMeta)."""
    return "".join("\\" + ch if ch in _REGEX_SPECIAL else ch for ch in text)


def _aliased(aliases: Mapping[str, str], value: str) -> str:
    # As normalize._pick applies aliases: the exact key, else the lower-cased one.
    return aliases.get(value, aliases.get(value.lower(), value))


def _normalized_label_matcher(
    name: str, labels: Mapping[str, str], source: LabelSource
) -> tuple[str, str] | None:
    """(operator, value) matching every original value of `name` that normalizes to ours.

    Mirrors `normalize._pick`: the first of `from_labels` with a value wins, then aliases
    apply (exact key, else the lower-cased key), else the default.
    """
    value = labels.get(name)
    if value is None or name not in source.from_labels:
        # The original label never took part in picking the value: it could have been anything.
        return None
    position = source.from_labels.index(name)
    overwritten = {SOURCE_LABEL, *NORMALIZED_LABELS}
    for earlier in source.from_labels[:position]:
        if earlier in overwritten or labels.get(earlier):
            # An earlier label decided the value (or may have): the original is unknown.
            return None
    aliases = source.aliases
    verbatim = _aliased(aliases, value) == value
    spellings = sorted(key for key, target in aliases.items() if target == value and key != value)
    # Without the label, the later ones (or the default) pick the value; if that pick could
    # give ours, the alert may simply not have had the label.
    absent_possible = False
    for later in source.from_labels[position + 1 :]:
        if later in overwritten:
            absent_possible = True
            break
        candidate = labels.get(later)
        if candidate:
            absent_possible = _aliased(aliases, candidate) == value
            break
    else:
        absent_possible = source.default == value
    if verbatim and not spellings and not absent_possible:
        return ("=", value)
    alternatives = [""] if absent_possible else []
    if verbatim:
        alternatives.append(quote_regex(value))
    # A lower-case alias key also catches any capitalisation of it (the lookup lower-cases);
    # a key with capitals only matches itself.
    exact = [quote_regex(s) for s in spellings if s != s.lower()]
    folded = [quote_regex(s) for s in spellings if s == s.lower()]
    alternatives.extend(exact)
    if folded:
        alternatives.append("(?i:" + "|".join(folded) + ")")
    if alternatives in ([], [""]):
        return None
    return ("=~", "|".join(alternatives))


def silence_matchers(
    labels: Mapping[str, str],
    config: Config,
    original_labels: Mapping[str, str] | None = None,
) -> list[tuple[str, str, str]]:
    """(name, operator, value) matchers for a silence of this alert, alertname first.

    With `original_labels` (the alert as Alertmanager sent it) every label is an equality
    matcher. Otherwise see the module docstring: `source` is dropped, `env`/`severity` match
    the original spellings that normalize to our value, or are dropped when unknowable.
    """
    result: list[tuple[str, str, str]] = []
    if original_labels is not None:
        result = [(k, "=", v) for k, v in original_labels.items()]
    else:
        sources = {"env": config.environment, "severity": config.severity}
        for name, value in labels.items():
            if name == SOURCE_LABEL:
                continue
            if name in sources:
                found = _normalized_label_matcher(name, labels, sources[name])
                if found is not None:
                    result.append((name, *found))
                continue
            result.append((name, "=", value))
    # alertname first, as Alertmanager's own UI lists it; the rest by name for stable URLs.
    result.sort(key=lambda m: (m[0] != "alertname", m[0]))
    return result


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_PERCENT = [chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256)]


def _percent(text: str) -> str:
    """`quote(text, safe="")`, by table: every alert of a storm gets a silence link."""
    return "".join([_PERCENT[b] for b in text.encode()])


def _json_string(value: str) -> str:
    # Most label values need no escaping; json.dumps for the rest (quotes, controls).
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def silence_url(
    external_url: str,
    labels: Mapping[str, str] | Sequence[tuple[str, str, str]],
) -> str:
    """Alertmanager's new-silence form pre-filled with `labels` as matchers.

    `labels` is either a label set (equality matchers) or `(name, op, value)` triples from
    `silence_matchers`. Values are JSON-quoted, matchers joined with `", "` inside braces
    and the whole filter percent-encoded, as the Alertmanager UI parses it.
    """
    triples = (
        [(k, "=", v) for k, v in labels.items()] if isinstance(labels, Mapping) else list(labels)
    )
    body = ", ".join(f"{n}{op}{_json_string(v)}" for n, op, v in triples)
    return f"{_base(external_url)}/#/silences/new?filter={_percent('{' + body + '}')}"


def argocd_app_url(argocd_url: str, app: str) -> str:
    """The Argo CD application page, `<argocd_url>/applications/<app>`."""
    return f"{_base(argocd_url)}/applications/{quote(app, safe='')}"


def _argocd_base(event: Event, argocd: ArgoCDConfig) -> str:
    # An Argo CD notification names its own server; prefer it over the configured one.
    if event.source == "argocd" and event.details.get("argocdUrl"):
        return event.details["argocdUrl"]
    return argocd.url


def _has_originals(event: Event) -> bool:
    return any(key.startswith(ORIGINAL_PREFIX) for key in event.details)


def links_for(
    event: Event,
    config: Config,
    *,
    expr: str | None,
    start: datetime,
    end: datetime,
) -> list[Link]:
    """Every link that applies to `event`, in a stable order, http(s) only, each URL once.

    Order: Grafana Explore for `expr` (when Loki and Grafana are configured), the matching
    Grafana dashboard, the Alertmanager silence form, the Prometheus source (generatorURL),
    the runbook, the Argo CD application.
    """
    candidates: list[Link] = []
    grafana = config.enrich.grafana
    if grafana is not None and config.enrich.loki is not None and expr:
        candidates.append(Link(TITLE_LOGS, grafana_explore_url(grafana, expr, start, end)))
    if grafana is not None:
        dashboard = grafana_dashboard_url(grafana, event.labels, start, end)
        if dashboard is not None:
            candidates.append(Link(TITLE_DASHBOARD, dashboard))
    if event.source == "alertmanager" and event.external_url:
        sent = original_labels(event.labels, event.details) if _has_originals(event) else None
        matchers = silence_matchers(event.labels, config, original_labels=sent)
        if matchers:
            candidates.append(Link(TITLE_SILENCE, silence_url(event.external_url, matchers)))
    if event.generator_url:
        candidates.append(Link(TITLE_SOURCE, event.generator_url))
    runbook = event.annotations.get("runbook_url", "")
    if runbook:
        candidates.append(Link(TITLE_RUNBOOK, runbook.strip()))
    app = event.labels.get("app", "")
    argocd_base = _argocd_base(event, config.argocd)
    if app and argocd_base:
        candidates.append(Link(TITLE_ARGOCD, argocd_app_url(argocd_base, app)))
    links: list[Link] = []
    seen: set[str] = set()
    for link in candidates:
        if is_web_url(link.url) and link.url not in seen:
            seen.add(link.url)
            links.append(link)
    return links
