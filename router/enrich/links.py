"""Deep links for an alert: Grafana Explore and dashboards, Alertmanager silence, Argo CD.

Pure functions, no I/O. The silence link opens Alertmanager's new-silence form
(`<externalURL>/#/silences/new?filter=...`) pre-filled with the alert's labels as
Alertmanager sent them (`Event.labels_as_sent`): our normalized `source`, `env` and
`severity` are labels Alertmanager never saw, so a filter on them would match nothing.
Explore links use Grafana's `schemaVersion=1&panes=` URL form (Grafana 10.1+); dashboard
links set `var-` variables and the time range.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from router.config.schema import ArgoCDConfig, Config, GrafanaConfig
from router.matchers import matches_all
from router.model import Event
from router.render.message import Link

# A Grafana Explore pane id: 3 characters of Grafana's ID_ALPHABET with at least one letter,
# or Grafana replaces it (migrators/v1.ts). A fixed id keeps our URLs deterministic.
EXPLORE_PANE_ID = "alr"

# Dashboard variables set from alert labels when the alert has them.
DASHBOARD_VARIABLES = ("namespace", "app")

TITLE_LOGS = "Logs (Grafana Explore)"
TITLE_DASHBOARD = "Grafana dashboard"
TITLE_SILENCE = "Silence"
TITLE_ARGOCD = "Argo CD"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(when: datetime) -> int:
    """Milliseconds since the Unix epoch, exact (no float rounding); naive times are UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(milliseconds=1)


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


def grafana_dashboard_url(
    grafana: GrafanaConfig, labels: Mapping[str, str], start: datetime, end: datetime
) -> str | None:
    """The first `dashboards` entry whose matchers match `labels`, with variables and range.

    `var-namespace` and `var-app` are set only for labels the alert has; `None` when no
    entry matches.
    """
    for rule in grafana.dashboards:
        if not matches_all(rule.matchers, labels):
            continue
        params = [("orgId", str(grafana.org_id))]
        params += [(f"var-{n}", labels[n]) for n in DASHBOARD_VARIABLES if labels.get(n)]
        params += [("from", str(epoch_ms(start))), ("to", str(epoch_ms(end)))]
        return f"{_base(grafana.url)}/d/{quote(rule.uid, safe='')}?{_query(params)}"
    return None


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_UNRESERVED_TEXT = frozenset(map(chr, _UNRESERVED))
_PERCENT = [chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256)]


def _percent(text: str) -> str:
    """`quote(text, safe="")`, by table: every alert of a storm gets a silence link."""
    return "".join([_PERCENT[b] for b in text.encode()])


def _json_string(value: str) -> str:
    # Most label values need no escaping; json.dumps for the rest (quotes, controls).
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


# Percent-encoding goes character by character, so the encoded filter is the encoded
# matchers joined by the encoded separator: a label pair shared by the alerts of a group
# (alertname, namespace, app) is encoded once, not once per alert and receiver.
@functools.lru_cache(maxsize=4096)
def _matcher(name: str, value: str) -> str:
    # Label names and most values (pod names, alertnames) need neither escaping nor
    # encoding: checking that is cheaper than encoding them.
    if _UNRESERVED_TEXT.issuperset(value) and _UNRESERVED_TEXT.issuperset(name):
        return f"{name}%3D%22{value}%22"
    return _percent(f"{name}={_json_string(value)}")


_OPEN, _SEPARATOR, _CLOSE = _percent("{"), _percent(", "), _percent("}")


def silence_url(external_url: str, labels: Mapping[str, str]) -> str:
    """Alertmanager's new-silence form pre-filled with one equality matcher per label.

    alertname first, as Alertmanager's UI lists it, then by name for stable URLs. Values
    are JSON-quoted, matchers joined with `", "` inside braces and the whole filter
    percent-encoded, as the Alertmanager UI parses it.
    """
    names = sorted(labels)
    if "alertname" in labels:
        names.remove("alertname")
        names.insert(0, "alertname")
    body = _SEPARATOR.join([_matcher(name, labels[name]) for name in names])
    return f"{_base(external_url)}/#/silences/new?filter={_OPEN}{body}{_CLOSE}"


def argocd_app_url(argocd_url: str, app: str) -> str:
    """The Argo CD application page, `<argocd_url>/applications/<app>`."""
    return f"{_base(argocd_url)}/applications/{quote(app, safe='')}"


def _argocd_base(event: Event, argocd: ArgoCDConfig) -> str:
    # An Argo CD notification names its own server; prefer it over the configured one.
    if event.source == "argocd" and event.details.get("argocdUrl"):
        return event.details["argocdUrl"]
    return argocd.url


def links_for(
    event: Event,
    config: Config,
    *,
    expr: str | None,
    start: datetime,
    end: datetime,
) -> list[Link]:
    """The links enrichment adds to `event`'s alert.

    Order: Grafana Explore for `expr` (when Loki and Grafana are configured), the matching
    Grafana dashboard, the Alertmanager silence form, the Argo CD application. The alert's
    own runbook and source are already on its view; `alert_links` puts them all together
    and drops what is not an http(s) URL.
    """
    links: list[Link] = []
    grafana = config.enrich.grafana
    if grafana is not None:
        if config.enrich.loki is not None and expr:
            links.append(Link(TITLE_LOGS, grafana_explore_url(grafana, expr, start, end)))
        dashboard = grafana_dashboard_url(grafana, event.labels, start, end)
        if dashboard is not None:
            links.append(Link(TITLE_DASHBOARD, dashboard))
    if event.external_url and event.source == "alertmanager":
        sent = event.labels_as_sent()
        if sent:
            links.append(Link(TITLE_SILENCE, silence_url(event.external_url, sent)))
    app = event.labels.get("app")
    if app:
        argocd_base = _argocd_base(event, config.argocd)
        if argocd_base:
            links.append(Link(TITLE_ARGOCD, argocd_app_url(argocd_base, app)))
    return links
