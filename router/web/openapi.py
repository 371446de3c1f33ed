"""The OpenAPI 3 description of every endpoint the service answers: paths written here,
component schemas generated from the pydantic models of the bodies (router/web/schemas.py,
the ingest models); tests/test_api_schema.py runs schemathesis against it."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

from router import version
from router.ingest.alertmanager import AlertmanagerWebhook
from router.ingest.argocd import ArgoCDNotification
from router.model import DeliveryState
from router.web import schemas
from router.web.console.openapi import console_paths, form_body
from router.web.heartbeat import heartbeat_paths

JSON = "application/json"


REF_TEMPLATE = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


class _OpenAPI30(GenerateJsonSchema):
    """pydantic's JSON Schema in OpenAPI 3.0's dialect: `nullable` for `X | None`, no
    defaults (the descriptions say what an absent field means)."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if "$ref" in inner:
            return {"allOf": [inner], "nullable": True}
        return {**inner, "nullable": True}

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


def _untitled(schema: Any) -> Any:
    """The schema without pydantic's `title`s (the component names say it); a property
    named title is a schema, not a string, and stays."""
    if isinstance(schema, dict):
        return {
            k: _untitled(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_untitled(v) for v in schema]
    return schema


# Component name -> model; requests are described as they are read, responses as written.
_REQUESTS: dict[str, type[BaseModel]] = {
    "AlertmanagerWebhook": AlertmanagerWebhook,
    "ArgoCDWebhook": ArgoCDNotification,
    "RouteTest": schemas.RouteTest,
    "OverrideRequest": schemas.OverrideRequest,
    "Replay": schemas.Replay,
}
_RESPONSES: dict[str, type[BaseModel]] = {
    model.__name__: model
    for model in (
        schemas.Error,
        schemas.Accepted,
        schemas.Status,
        schemas.NotificationWithTimeline,
        schemas.NotificationPage,
        schemas.Group,
        schemas.Retried,
        schemas.RouteTestResult,
        schemas.OnCall,
        schemas.OverrideAdded,
        schemas.OverrideRemoved,
        schemas.ReplayResult,
        schemas.ConfigProblems,
        schemas.Insights,
        schemas.Heartbeats,
        schemas.Beat,
    )
}


def _component_schemas() -> dict[str, Any]:
    """Every model's schema, and the models they refer to, by name."""
    components: dict[str, Any] = {}

    def add(name: str, schema: dict[str, Any]) -> None:
        if components.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are named {name}")

    modes: tuple[tuple[JsonSchemaMode, dict[str, type[BaseModel]]], ...] = (
        ("validation", _REQUESTS),
        ("serialization", _RESPONSES),
    )
    for mode, models in modes:
        for name, model in models.items():
            schema = _untitled(
                model.model_json_schema(
                    ref_template=REF_TEMPLATE, schema_generator=_OpenAPI30, mode=mode
                )
            )
            for def_name, definition in schema.pop("$defs", {}).items():
                add(def_name, definition)
            add(name, schema)
    return dict(sorted(components.items()))


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
                    "201": _json(_ref("OverrideAdded"), "stored; every replica honours it"),
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
                    "200": _json(_ref("OverrideRemoved"), "removed"),
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
            "schemas": _component_schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }
