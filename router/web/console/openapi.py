"""The console's pages in the service's OpenAPI document: HTML for people, listed so the
document names every endpoint."""

from __future__ import annotations

from typing import Any


def form_body(*fields: str) -> dict[str, Any]:
    """A required form-encoded request body of text fields, all required."""
    schema = {
        "type": "object",
        "properties": {field: {"type": "string"} for field in fields},
        "required": list(fields),
    }
    return {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": schema}},
    }


_HTML = {"text/html": {"schema": {"type": "string"}}}
_SECURITY: list[dict[str, list[str]]] = [{"basic": []}, {"bearer": []}, {}]


def _page(operation: str, summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation,
            "summary": summary,
            "tags": ["console"],
            "security": _SECURITY,
            "parameters": parameters,
            "responses": {
                "200": {"description": "the page", "content": _HTML},
                "400": {"description": "a parameter it cannot use", "content": _HTML},
                "401": {"description": "server.auth.api credentials are needed"},
                "403": {"description": "only the trusted proxy can let the caller in"},
                "404": {"description": "not kept", "content": _HTML},
                "503": {"description": "the store does not answer", "content": _HTML},
            },
        }
    }


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


def _action(
    operation: str, summary: str, parameters: list[dict[str, Any]], *fields: str
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation,
            "summary": summary,
            "tags": ["console"],
            "security": _SECURITY,
            "parameters": parameters,
            "requestBody": form_body("csrf", *fields),
            "responses": {
                "303": {"description": "done: the page that shows the outcome"},
                "403": {
                    "description": "not an admin, no token or another Origin",
                    "content": _HTML,
                },
                "503": {"description": "the store does not answer", "content": _HTML},
            },
        }
    }


def _also(item: dict[str, Any], status: str, description: str) -> dict[str, Any]:
    """An action that can also answer `status` (an HTML page saying why)."""
    post = item["post"]
    responses = {**post["responses"], status: {"description": description, "content": _HTML}}
    return {"post": {**post, "responses": responses}}


def _replay() -> dict[str, Any]:
    page = _action(
        "consoleReplay", "The routes page with a proposed routes.yaml's diff (admin)", []
    )
    post = page["post"]
    post["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"][
        "properties"
    ].update({"config": {"type": "string"}, "since": {"type": "string"}})
    post["responses"] = {
        "200": {
            "description": "the routes page with the groups that would change",
            "content": _HTML,
        },
        "400": {"description": "the proposed config does not load", "content": _HTML},
        **{k: v for k, v in post["responses"].items() if k != "303"},
    }
    return page


def _static(name: str, media: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": name,
            "summary": "the console's own " + ("stylesheet" if media == "text/css" else "script"),
            "tags": ["console"],
            "responses": {
                "200": {"description": name, "content": {media: {"schema": {"type": "string"}}}}
            },
        }
    }


_FILTERS = [
    _query("receiver", "a receiver's name"),
    _query("env", "the env label"),
    _query("severity", "the severity label"),
    _query("source", "alertmanager or argocd"),
    _query("state", "pending, sent, suppressed, failed or dead"),
    _query("reason", "first, new_alerts, resolved, repeat, duplicate, muted, inhibited, ..."),
    _query("q", "text in the alertname or any label value"),
    _query("cursor", "the next page's cursor, as the page links it"),
]


def console_paths() -> dict[str, Any]:
    """The OpenAPI path items of the console."""
    redirect = {
        "get": {
            "operationId": "consoleRoot",
            "summary": "redirects to /ui/",
            "tags": ["console"],
            "responses": {"302": {"description": "/ui/"}},
        }
    }
    return {
        "/": redirect,
        "/ui": {"get": {**redirect["get"], "operationId": "consoleRootNoSlash"}},
        "/ui/": _page("consoleOverview", "What fires, the last 24 h, the health of each part", []),
        "/ui/notifications": _page("consoleNotifications", "Records, filtered", _FILTERS),
        "/ui/notifications/{id}": _page(
            "consoleNotification", "One record and its timeline", [_path("id", "record id")]
        ),
        "/ui/notifications/{id}/retry": _action(
            "consoleRetry",
            "Retry a failed or dead notification now (admin)",
            [_path("id", "record id")],
        ),
        "/ui/groups/{key}": _page(
            "consoleGroup",
            "Every receiver's records of one group",
            [_path("key", "the group key, URL-encoded")],
        ),
        "/ui/routes": _page(
            "consoleRoutes",
            "The route tree, and the tester",
            [_query("labels", "name=value name=value"), _query("at", "an RFC 3339 time")],
        ),
        "/ui/insights": _page(
            "consoleInsights",
            "Noise, flaps, MTTA and MTTR per alertname, receiver and team, with charts",
            [_query("since", "a duration up to 90d"), _query("sort", "noise, notifications, ...")],
        ),
        "/ui/routes/replay": _replay(),
        "/ui/digests/{id}": _page(
            "consoleDigest", "Every alert a digest stands for", [_path("id", "digest id")]
        ),
        "/ui/login": {
            "get": {
                "operationId": "consoleLogin",
                "tags": ["console"],
                "summary": "asks the browser for the admin's credentials",
                "parameters": [_query("next", "a console path to go back to")],
                "responses": {
                    "303": {"description": "signed in as admin"},
                    "401": {"description": "sign in as the admin"},
                    "403": {"description": "no admin can sign in"},
                },
            }
        },
        "/ui/reload": _action("consoleReload", "Reload the configuration (admin)", []),
        "/ui/notifications/{id}/acknowledge": _also(
            _action(
                "consoleAcknowledgeNotification",
                "Acknowledge (ack=1) or unacknowledge (ack=0) the record's group (admin)",
                [_path("id", "record id")],
            ),
            "404",
            "no such record",
        ),
        "/ui/groups/acknowledge": _also(
            _action(
                "consoleAcknowledgeGroup",
                "Acknowledge (ack=1) or unacknowledge (ack=0) one receiver's group (admin)",
                [],
                "receiver",
                "group_key",
            ),
            "404",
            "no record of that receiver's group",
        ),
        "/ui/oncall": _page("consoleOncall", "Who is on call per rotation, and the overrides", []),
        "/ui/oncall/overrides": _also(
            _action("consoleAddOverride", "Add an on-call override (admin)", [], "until"),
            "400",
            "a field it cannot use",
        ),
        "/ui/oncall/overrides/{id}/remove": _action(
            "consoleRemoveOverride",
            "Remove an on-call override (admin)",
            [_path("id", "override id")],
        ),
        "/ui/acknowledge": _action(
            "consoleAcknowledge",
            "Acknowledge a group (its Slack messages and PagerDuty alerts; admin)",
            [],
            "group",
        ),
        "/ui/static/console.css": _static("consoleStylesheet", "text/css"),
        "/ui/static/console.js": _static("consoleScript", "text/javascript"),
    }
