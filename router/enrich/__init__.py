"""Enrichment: Loki log excerpts and Grafana/Alertmanager/Argo CD links for notifications."""

from router.enrich.enricher import Enricher
from router.enrich.links import (
    argocd_app_url,
    grafana_dashboard_url,
    grafana_explore_url,
    links_for,
    silence_url,
)
from router.enrich.loki import (
    LogQLTemplate,
    LokiEnricher,
    LokiResult,
    MissingLabelError,
    QueryTemplateError,
    logql_escape,
    logql_regex,
)

__all__ = [
    "Enricher",
    "LogQLTemplate",
    "LokiEnricher",
    "LokiResult",
    "MissingLabelError",
    "QueryTemplateError",
    "argocd_app_url",
    "grafana_dashboard_url",
    "grafana_explore_url",
    "links_for",
    "logql_escape",
    "logql_regex",
    "silence_url",
]
