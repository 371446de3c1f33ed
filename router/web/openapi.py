"""The OpenAPI 3 description of every endpoint the service answers, built in code so it
changes with the handlers (tests/test_api_schema.py runs schemathesis against it)."""

from __future__ import annotations

import functools
from typing import Any

from router import version
from router.model import DeliveryState
from router.web.console.openapi import console_paths, form_body
from router.web.heartbeat import heartbeat_paths

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _string_map(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": description,
    }


_NULLABLE_STRING = {"type": "string", "nullable": True}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "what to change"}},
    },
    "Accepted": {
        "type": "object",
        "required": ["accepted"],
        "properties": {"accepted": {"type": "integer", "minimum": 0}},
    },
    "AlertmanagerWebhook": {
        "type": "object",
        "description": "Alertmanager's webhook receiver body, version 4; read as far as it can be",
        "required": ["alerts"],
        "properties": {
            "version": {"type": "string"},
            "groupKey": {"type": "string"},
            "truncatedAlerts": {"type": "integer"},
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "receiver": {"type": "string"},
            "groupLabels": _string_map("labels the group is made of"),
            "commonLabels": _string_map("labels every alert has"),
            "commonAnnotations": _string_map("annotations every alert has"),
            "externalURL": {"type": "string"},
            "alerts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "enum": ["firing", "resolved"]},
                        "labels": _string_map("the alert's labels"),
                        "annotations": _string_map("the alert's annotations"),
                        "startsAt": {"type": "string", "format": "date-time"},
                        "endsAt": {"type": "string", "format": "date-time"},
                        "generatorURL": {"type": "string"},
                        "fingerprint": {"type": "string"},
                    },
                },
            },
        },
    },
    "ArgoCDWebhook": {
        "type": "object",
        "description": "one Argo CD notification, from the webhook template of its trigger",
        "required": ["trigger", "app"],
        "properties": {
            "trigger": {"type": "string", "example": "on-sync-failed"},
            "app": {"type": "string"},
            "namespace": {"type": "string"},
            "project": {"type": "string"},
            "revision": {"type": "string"},
            "syncStatus": {"type": "string"},
            "healthStatus": {"type": "string"},
            "phase": {"type": "string"},
            "message": {"type": "string"},
            "argocdUrl": {"type": "string"},
            "labels": _string_map("the Application's labels"),
        },
    },
    "Status": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string"},
            "error": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "string"}},
            "failed_teams": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Notification": {
        "type": "object",
        "description": "the delivery record of one notification to one receiver",
        "required": [
            "id",
            "receiver",
            "group_key",
            "route_path",
            "alerts",
            "state",
            "reason",
            "attempts",
            "last_error",
            "created_at",
            "updated_at",
            "delivered_in",
        ],
        "properties": {
            "id": {"type": "string"},
            "receiver": {"type": "string"},
            "group_key": {"type": "string"},
            "route_path": {"type": "string", "description": "the route that chose the receiver"},
            "alerts": {"type": "array", "items": {"type": "object"}},
            "state": {"type": "string", "enum": [s.value for s in DeliveryState]},
            "reason": {
                "type": "string",
                "description": "first, new_alerts, resolved, repeat, duplicate, muted,"
                " inhibited, flapped, ... or the error reason of a failed/dead one",
            },
            "attempts": {"type": "integer", "minimum": 0},
            "last_error": {"type": "string"},
            "created_at": {"type": "number", "description": "epoch seconds"},
            "updated_at": {"type": "number", "description": "epoch seconds"},
            "delivered_in": {
                "type": "string",
                "description": "the record or digest that carried this one, if another did",
            },
            "env": {"type": "string"},
            "severity": {"type": "string"},
            "source": {"type": "string"},
            "alertname": {"type": "string"},
            "not_before": {"type": "number", "description": "held until (epoch seconds; 0: not)"},
        },
    },
    "TimelineEntry": {
        "type": "object",
        "required": ["at", "kind", "text", "detail"],
        "properties": {
            "at": {"type": "number", "description": "epoch seconds"},
            "kind": {
                "type": "string",
                "description": "received, routed, held, muted, inhibited, deduplicated,"
                " enriched, attempt, sent, suppressed, failed, dead, digested, retried, ...",
            },
            "text": {"type": "string"},
            "detail": _string_map("the same facts for machines"),
        },
    },
    "GroupActions": {
        "type": "object",
        "nullable": True,
        "description": "what people did to the group from Slack: who acknowledged it and"
        " when, who silenced it until when (the Alertmanager silence id); times in epoch"
        " seconds, 0 for never",
        "properties": {
            "receiver": {"type": "string"},
            "group_key": {"type": "string"},
            "acked_by": {"type": "string"},
            "acked_by_name": {"type": "string"},
            "acked_at": {"type": "number"},
            "silenced_by": {"type": "string"},
            "silenced_by_name": {"type": "string"},
            "silenced_at": {"type": "number"},
            "silenced_until": {"type": "number"},
            "silence_id": {"type": "string"},
            "silence_pending": {"type": "string"},
            "last_error": {"type": "string"},
            "version": {"type": "integer"},
        },
    },
    "NotificationWithTimeline": {
        "allOf": [
            _ref("Notification"),
            {
                "type": "object",
                "required": ["timeline", "actions"],
                "properties": {
                    "timeline": {"type": "array", "items": _ref("TimelineEntry")},
                    "actions": _ref("GroupActions"),
                },
            },
        ]
    },
    "NotificationPage": {
        "type": "object",
        "required": ["notifications", "next_cursor"],
        "properties": {
            "notifications": {"type": "array", "items": _ref("Notification")},
            "next_cursor": {
                **_NULLABLE_STRING,
                "description": "pass as `cursor` for the next (older) page; null on the last",
            },
        },
    },
    "Group": {
        "type": "object",
        "required": ["group_key", "receivers", "notifications", "next_cursor"],
        "properties": {
            "group_key": {"type": "string"},
            "receivers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["receiver", "state", "reason", "latest", "actions"],
                    "properties": {
                        "receiver": {"type": "string"},
                        "state": {"type": "string"},
                        "reason": {"type": "string"},
                        "latest": {"type": "string", "description": "id of its latest record"},
                        "actions": _ref("GroupActions"),
                    },
                },
            },
            "notifications": {"type": "array", "items": _ref("Notification")},
            "next_cursor": _NULLABLE_STRING,
        },
    },
    "RouteTest": {
        "type": "object",
        "required": ["labels"],
        "additionalProperties": False,
        "properties": {
            "labels": {**_string_map("the alert's labels"), "minProperties": 1},
            "at": {
                "type": "string",
                "format": "date-time",
                "description": "when (RFC 3339); default now",
            },
        },
    },
    "RouteTestResult": {
        "type": "object",
        "required": ["labels", "at", "receivers", "muted", "inhibited", "path", "routes"],
        "properties": {
            "labels": _string_map("the labels once normalized (env, severity, source)"),
            "at": {"type": "string"},
            "receivers": {
                "type": "array",
                "items": {"type": "string"},
                "description": "receivers told (unless inhibited)",
            },
            "muted": {
                "type": "array",
                "items": {"type": "string"},
                "description": "receivers matched but muted at `at`",
            },
            "inhibited": {
                "type": "boolean",
                "description": "an alert firing now inhibits it: nobody would be told",
            },
            "inhibited_by": {
                "type": "object",
                "nullable": True,
                "properties": {
                    "rule": {"type": "string"},
                    "source": _string_map("the firing alert's labels"),
                },
            },
            "path": {"type": "array", "items": {"type": "string"}},
            "routes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["receiver", "path", "muted_by", "escalate"],
                    "properties": {
                        "receiver": {"type": "string"},
                        "path": {"type": "string"},
                        "muted_by": {"type": "string"},
                        "escalate": {
                            "type": "array",
                            "description": "While the group fires unacknowledged: who is"
                            " told after how many seconds.",
                            "items": {
                                "type": "object",
                                "required": ["after", "to"],
                                "properties": {
                                    "after": {"type": "number"},
                                    "to": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "OncallMember": {
        "type": "object",
        "required": ["name", "slack", "email"],
        "properties": {n: {"type": "string"} for n in ("name", "slack", "email")},
    },
    "Override": {
        "type": "object",
        "required": ["id", "rotation", "who", "from", "until", "created_by", "created_at"],
        "properties": {
            **{n: {"type": "string"} for n in ("id", "rotation", "who", "created_by")},
            **{n: {"type": "string", "format": "date-time"} for n in ("from", "until")},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "OverrideRequest": {
        "type": "object",
        "required": ["rotation", "who", "until"],
        "properties": {
            "rotation": {"type": "string", "description": "a rotation of routes.yaml's oncall"},
            "who": {"type": "string", "description": "a member of that rotation, by name"},
            "from": {"type": "string", "format": "date-time", "description": "default: now"},
            "until": {"type": "string", "format": "date-time"},
        },
    },
    "OnCall": {
        "type": "object",
        "required": ["at", "rotations", "overrides"],
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "rotations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "timezone", "rotation", "members", "on_call", "since"],
                    "properties": {
                        "name": {"type": "string"},
                        "timezone": {"type": "string"},
                        "rotation": {"type": "string", "enum": ["weekly", "daily"]},
                        "members": {"type": "array", "items": {"type": "string"}},
                        "on_call": _ref("OncallMember"),
                        "since": {"type": "string", "format": "date-time"},
                        "override": {**_NULLABLE_STRING, "description": "the override's id"},
                        "next_handoff": {
                            "type": "object",
                            "required": ["at", "to"],
                            "properties": {
                                "at": {"type": "string", "format": "date-time"},
                                "to": _ref("OncallMember"),
                            },
                        },
                    },
                },
            },
            "overrides": {"type": "array", "items": _ref("Override")},
        },
    },
    "Replay": {
        "type": "object",
        "required": ["config"],
        "additionalProperties": False,
        "description": "JSON-wrapped (POST /api/* takes JSON only): the YAML is a string.",
        "properties": {
            "config": {"type": "string", "minLength": 1, "description": "proposed routes.yaml"},
            "since": {"type": "string", "description": "window, a duration up to 31d; 7d"},
        },
    },
    "ReplayResult": {
        "type": "object",
        "required": ["since", "until", "events", "groups", "changed_count", "changed"],
        "properties": {
            "since": {"type": "string", "format": "date-time"},
            "until": {"type": "string", "format": "date-time"},
            "events": {"type": "integer", "description": "events replayed"},
            "groups": {"type": "integer", "description": "groups they belong to"},
            "changed_count": {"type": "integer"},
            "changed": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["group_key", "events", "changed_events", "before", "after"],
                    "properties": {
                        "group_key": {"type": "string"},
                        "alertname": {"type": "string"},
                        "events": {"type": "integer"},
                        "changed_events": {"type": "integer"},
                        "before": _ref("ReplaySide"),
                        "after": _ref("ReplaySide"),
                        "example": {"type": "object", "description": "first event changed"},
                    },
                },
            },
        },
    },
    "ReplaySide": {
        "type": "object",
        "required": ["receivers", "muted", "inhibited"],
        "properties": {
            "receivers": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "receiver: events it is told of",
            },
            "muted": {"type": "object", "additionalProperties": {"type": "integer"}},
            "inhibited": {"type": "integer", "description": "events held back by a rule"},
        },
    },
    "ConfigProblems": {
        "type": "object",
        "required": ["error", "problems"],
        "properties": {
            "error": {"type": "string"},
            "problems": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Insights": {
        "type": "object",
        "required": ["since", "until", "alerts", "receivers", "teams"],
        "properties": {
            "since": {"type": "string", "format": "date-time"},
            "until": {"type": "string", "format": "date-time"},
            "alerts": {"type": "array", "items": _ref("InsightRow")},
            "receivers": {"type": "array", "items": _ref("InsightRow")},
            "teams": {"type": "array", "items": _ref("InsightRow")},
        },
    },
    "InsightRow": {
        "type": "object",
        "description": "alertname, receiver or team names the row; a statistic with no data"
        " is null; percentiles are duration bucket bounds (at most that long)",
        "required": [
            "episodes",
            "notifications",
            "flaps",
            "acknowledged_share",
            "noise_share",
            "mtta_seconds",
            "mttr_seconds",
        ],
        "properties": {
            "alertname": {"type": "string"},
            "receiver": {"type": "string"},
            "team": {"type": "string"},
            "episodes": {"type": "integer", "description": "firing episodes that resolved"},
            "notifications": {"type": "integer"},
            "flaps": {"type": "integer", "description": "fired again within 1h of resolving"},
            "escalations": {"type": "integer"},
            "acknowledged_share": {"type": "number", "nullable": True},
            "noise_share": {
                "type": "number",
                "nullable": True,
                "description": "share of episodes resolved within 5 min with nobody"
                " acknowledging or silencing them",
            },
            "mtta_seconds": _ref("Percentiles"),
            "mttr_seconds": _ref("Percentiles"),
            "previous": {
                "type": "object",
                "nullable": True,
                "description": "the window before: episodes, notifications, noise_share",
            },
        },
    },
    "Percentiles": {
        "type": "object",
        "required": ["p50", "p90"],
        "properties": {
            "p50": {"type": "number", "nullable": True},
            "p90": {"type": "number", "nullable": True},
        },
    },
    "Retried": {
        "type": "object",
        "required": ["retried", "notification"],
        "properties": {
            "retried": {"type": "boolean"},
            "notification": {"allOf": [_ref("Notification")], "nullable": True},
        },
    },
}

# Credentials are optional in the description: each is required only when the config
# sets the matching `server.auth` entry.
_CREDENTIALS: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}, {}]

_UNAUTHORIZED = {
    "description": "missing or wrong credentials (when server.auth sets them)",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    "content": {JSON: {"schema": _ref("Error")}},
}
_UNAVAILABLE = _error("the state store does not answer; retry later")


def _webhook(source: str, schema: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": f"webhook_{source}",
            "summary": f"Accept a {source} webhook: recorded durably before the 200",
            "tags": ["webhooks"],
            "security": _CREDENTIALS,
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref(schema)}}},
            "responses": {
                "200": _json(_ref("Accepted"), "how many events were accepted"),
                "400": _error("not a body this source sends"),
                "401": _UNAUTHORIZED,
                "413": _error("larger than server.max_body_bytes"),
                "415": _error("Content-Type is not application/json"),
                "503": _UNAVAILABLE,
            },
        }
    }


_LIST_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": d}
    for name, d in (
        ("receiver", "only this receiver's records"),
        ("env", "only this env (the first alert's)"),
        ("severity", "only this severity (the first alert's)"),
        ("source", "alertmanager or argocd"),
        ("reason", "first, new_alerts, duplicate, muted, inhibited, flapped, ..."),
        ("group_key", "only this group's records"),
        ("group", "the same as group_key"),
        ("digest", "the records this digest (or record) carried"),
        ("cursor", "the next_cursor of the previous page"),
    )
] + [
    {
        "name": "state",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": [s.value for s in DeliveryState]},
    },
    {
        "name": "q",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "minLength": 3},
        "description": "text in the alertname or any label value (case-insensitive)",
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
    },
]

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _paths() -> dict[str, Any]:
    return {
        **console_paths(),
        "/webhook/alertmanager": _webhook("alertmanager", "AlertmanagerWebhook"),
        "/webhook/argocd": _webhook("argocd", "ArgoCDWebhook"),
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness: 200 while the process lives",
                "tags": ["operations"],
                "responses": {"200": _json(_ref("Status"), "alive")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the config is loaded and the store answers",
                "tags": ["operations"],
                "responses": {
                    "200": _json(_ref("Status"), "ready"),
                    "503": _json(_ref("Status"), "not ready, and why"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "the Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/-/reload": {
            "post": {
                "operationId": "reload",
                "summary": "Reload routes.yaml; the old config stays on any error",
                "tags": ["operations"],
                "security": _CREDENTIALS,
                "responses": {
                    "200": _json(_ref("Status"), "reloaded"),
                    "400": _json(_ref("Status"), "not reloaded: the errors"),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/slack/interactions": {
            "post": {
                "operationId": "slackInteractions",
                "summary": "Slack's block_actions (buttons), signed with Slack's v0 scheme",
                "description": "Verified with the app's signing secret (X-Slack-Signature, "
                "X-Slack-Request-Timestamp within 5 minutes); the click is recorded, then "
                "carried out by a worker.",
                "tags": ["slack"],
                "requestBody": form_body("payload"),
                "responses": {
                    "200": {"description": "recorded (or a click that changes nothing)"},
                    "400": _error("no payload, or a payload that is not Slack's JSON"),
                    "401": _error("missing, bad or stale signature"),
                    "404": _error("slack.interactivity is not configured"),
                    "413": _error("body over server.max_body_bytes"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/api/v1/notifications": {
            "get": {
                "operationId": "listNotifications",
                "summary": "Delivery records newest first, filtered, a page at a time",
                "tags": ["records"],
                "security": _CREDENTIALS,
                "parameters": _LIST_PARAMETERS,
                "responses": {
                    "200": _json(_ref("NotificationPage"), "one page"),
                    "400": _error("a parameter out of range, or a cursor not given out"),
                    "401": _UNAUTHORIZED,
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/api/v1/notifications/{id}": {
            "get": {
                "operationId": "getNotification",
                "summary": "One record with the timeline of every decision about it",
                "tags": ["records"],
                "security": _CREDENTIALS,
                "parameters": [_ID],
                "responses": {
                    "200": _json(_ref("NotificationWithTimeline"), "the record"),
                    "401": _UNAUTHORIZED,
                    "404": _error("no such record (or older than keep_records)"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/api/v1/notifications/{id}/retry": {
            "post": {
                "operationId": "retryNotification",
                "summary": "Deliver a failed or dead notification again now (admin)",
                "tags": ["actions"],
                "security": _CREDENTIALS,
                "parameters": [_ID],
                "responses": {
                    "200": _json(_ref("Retried"), "pending again, due now"),
                    "401": _UNAUTHORIZED,
                    "404": _error("no such record"),
                    "409": _error("the record is not failed or dead"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/api/v1/groups/{key}": {
            "get": {
                "operationId": "getGroup",
                "summary": "Every receiver's records of one alert group",
                "tags": ["records"],
                "security": _CREDENTIALS,
                "parameters": [
                    {
                        "name": "key",
                        "in": "path",
                        "required": True,
                        "description": "the group key, URL-encoded",
                        "schema": {"type": "string", "minLength": 1},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "description": "the next_cursor of the previous page (1000 a page)",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json(_ref("Group"), "the group's records, newest first"),
                    "400": _error("a cursor not given out"),
                    "401": _UNAUTHORIZED,
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/api/v1/routes/test": {
            "post": {
                "operationId": "testRoute",
                "summary": "Which receivers labels reach, muted or inhibited",
                "tags": ["routes"],
                "security": _CREDENTIALS,
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref("RouteTest")}}},
                "responses": {
                    "200": _json(_ref("RouteTestResult"), "what the router would do"),
                    "400": _error("not labels and an RFC 3339 time"),
                    "401": _UNAUTHORIZED,
                    "413": _error("larger than server.max_body_bytes"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/api/v1/oncall": {
            "get": {
                "operationId": "getOncall",
                "summary": "Who is on call per rotation, the next handoff, the overrides",
                "tags": ["oncall"],
                "security": _CREDENTIALS,
                "parameters": [
                    {
                        "name": "at",
                        "in": "query",
                        "required": False,
                        "description": "an RFC 3339 time (default: now)",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json(_ref("OnCall"), "each rotation at that time"),
                    "400": _error("at is not an RFC 3339 time"),
                    "401": _UNAUTHORIZED,
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/api/v1/oncall/overrides": {
            "post": {
                "operationId": "addOncallOverride",
                "summary": "Someone covers a rotation for a while, over the rotation (admin)",
                "tags": ["oncall"],
                "security": _CREDENTIALS,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("OverrideRequest")}},
                },
                "responses": {
                    "201": _json(
                        {
                            "type": "object",
                            "required": ["override"],
                            "properties": {"override": _ref("Override")},
                        },
                        "stored; every replica honours it",
                    ),
                    "400": _error("an unknown rotation or member, or times that cannot hold"),
                    "401": _UNAUTHORIZED,
                    "403": _error("not an admin"),
                    "408": _error("the body did not arrive in time"),
                    "413": _error("larger than server.max_body_bytes"),
                    "415": _error("Content-Type is not application/json"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/api/v1/oncall/overrides/{id}": {
            "delete": {
                "operationId": "removeOncallOverride",
                "summary": "Remove an override (admin)",
                "tags": ["oncall"],
                "security": _CREDENTIALS,
                "parameters": [_ID],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["removed"],
                            "properties": {"removed": {"type": "string"}},
                        },
                        "removed",
                    ),
                    "401": _UNAUTHORIZED,
                    "403": _error("not an admin"),
                    "404": _error("no such override"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        **heartbeat_paths(_CREDENTIALS, _UNAUTHORIZED),
        "/api/v1/routes/replay": {
            "post": {
                "operationId": "replayRoutes",
                "summary": "What a proposed routes.yaml would have changed over the window (admin)",
                "tags": ["routes"],
                "security": _CREDENTIALS,
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref("Replay")}}},
                "responses": {
                    "200": _json(_ref("ReplayResult"), "the groups that would change"),
                    "400": _error("not a config string and a duration"),
                    "401": _UNAUTHORIZED,
                    "413": _error("larger than server.max_body_bytes"),
                    "422": _json(_ref("ConfigProblems"), "the proposed config does not load"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/api/v1/insights": {
            "get": {
                "operationId": "getInsights",
                "summary": "Noise, flaps, MTTA and MTTR per alertname, receiver and team",
                "tags": ["records"],
                "security": _CREDENTIALS,
                "parameters": [
                    {
                        "name": "since",
                        "in": "query",
                        "required": False,
                        "description": "the window, a duration up to 90d (default 7d); up to"
                        " 2d it is whole hours, beyond whole UTC days, today included",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json(_ref("Insights"), "the window's rows, noisiest first"),
                    "400": _error("since is not a duration up to 90d"),
                    "401": _UNAUTHORIZED,
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["operations"],
                "security": _CREDENTIALS,
                "responses": {
                    "200": {"description": "OpenAPI 3", "content": {JSON: {"schema": {}}}},
                    "401": _UNAUTHORIZED,
                },
            }
        },
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document (built once; it depends on the code only)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "alert-router",
            "version": version(),
            "description": "Alertmanager and Argo CD notifications in; Slack, email and"
            " webhooks out. Credentials: server.auth.<source> for the webhooks,"
            " server.auth.api for reads, server.auth.admin (else api) for actions.",
        },
        "paths": _paths(),
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }
