"""Deploy correlation: the Argo CD sync that reached an app shortly before its alert."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from router.durations import format_duration
from router.enrich.links import argocd_app_url
from router.model import Deploy, Event, Status
from router.render.message import Link
from router.store.protocols import DeployHistory

# Argo CD triggers that mean "a new revision is running".
DEPLOY_TRIGGERS = frozenset({"on-deployed", "on-sync-succeeded"})


def deploys_of(events: Sequence[Event]) -> list[Deploy]:
    """The deploys a webhook's Argo CD events report (with a revision), to be recorded."""
    deploys = []
    for event in events:
        if event.source != "argocd" or event.alertname not in DEPLOY_TRIGGERS:
            continue
        revision = event.details.get("revision", "")
        at = event.starts_at
        if not revision or at is None:
            continue
        deploys.append(
            Deploy(
                app=event.labels.get("app", ""),
                namespace=event.labels.get("namespace", ""),
                revision=revision,
                at=at.timestamp(),
                trigger=event.alertname,
                argocd_url=event.details.get("argocdUrl", ""),
            )
        )
    return deploys


class DeployCorrelator:
    """Finds, for the firing alerts of a message, the deploy of the same app or namespace
    within `window` seconds before the alert started."""

    def __init__(self, store: DeployHistory) -> None:
        self.store = store

    async def find(
        self, events: Sequence[Event], window: float, argocd_url: str
    ) -> tuple[list[str], list[Link]]:
        """Notes like "backend synced to 9f2c1e7 4m before this alert", and Argo CD links."""
        starts: dict[tuple[str, str], datetime] = {}
        for event in events:
            if event.source == "argocd" or event.status is not Status.FIRING:
                continue
            if event.starts_at is None:
                continue
            key = (event.labels.get("app", ""), event.labels.get("namespace", ""))
            if key == ("", ""):
                continue
            if key not in starts or event.starts_at < starts[key]:
                starts[key] = event.starts_at
        notes: list[str] = []
        links: list[Link] = []
        seen: set[tuple[str, str]] = set()
        for (app, namespace), start in sorted(starts.items()):
            at = start.timestamp()
            found = await self.store.recent_deploys(at - window, at, app=app, namespace=namespace)
            # Prefer the app's own deploy over another app's in the same namespace.
            found.sort(key=lambda d: (d.app != app or not app, -d.at))
            if not found:
                continue
            deploy = found[0]
            if (deploy.app, deploy.revision) in seen:
                continue
            seen.add((deploy.app, deploy.revision))
            when = datetime.fromtimestamp(deploy.at, UTC).strftime("%H:%M UTC")
            ago = format_duration(at - deploy.at)
            notes.append(
                f"{deploy.app} synced to {deploy.revision[:7]} {ago} before this alert "
                f"({when}, {deploy.trigger})"
            )
            base = deploy.argocd_url or argocd_url
            if base and deploy.app:
                link = Link(f"Argo CD: {deploy.app}", argocd_app_url(base, deploy.app))
                # Two revisions of one app lead to the same page: one link is enough.
                if all(known.url != link.url for known in links):
                    links.append(link)
        return notes, links
