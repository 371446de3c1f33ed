"""Alertmanager's API v2, as far as the router uses it: creating and expiring silences."""

from router.alertmanager_api.client import AlertmanagerClient, Matcher, SilenceError, Silences

__all__ = ["AlertmanagerClient", "Matcher", "SilenceError", "Silences"]
