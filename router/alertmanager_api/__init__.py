"""Alertmanager's API v2, as far as the router uses it: creating and expiring silences at
the Alertmanagers routes.yaml names, and what a silence of a group may cover."""

from router.alertmanager_api.client import AlertmanagerClient, SilenceError, Silences

__all__ = ["AlertmanagerClient", "SilenceError", "Silences"]
