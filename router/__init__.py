"""alert-router: routes Alertmanager and Argo CD notifications to Slack, email and webhooks."""

from __future__ import annotations

import functools
from importlib import metadata


@functools.cache
def version() -> str:
    """The installed package's version; `0+unknown` when run from a bare source tree."""
    try:
        return metadata.version("alert-router")
    except metadata.PackageNotFoundError:
        return "0+unknown"
