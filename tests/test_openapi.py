"""The OpenAPI document's component schemas are generated from pydantic models: what the
generator must keep true of them (schemathesis checks the answers, tests/test_api_schema.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from router.web.openapi import openapi_document

PREFIX = "#/components/schemas/"


def nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in the document, depth first."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from nodes(child)


def test_every_reference_names_a_component_and_every_component_is_referenced() -> None:
    doc = openapi_document()
    components = doc["components"]["schemas"]
    refs = {n["$ref"] for n in nodes(doc) if isinstance(n.get("$ref"), str)}
    assert all(ref.startswith(PREFIX) for ref in refs)
    assert {ref.removeprefix(PREFIX) for ref in refs} == set(components)


def test_the_schemas_use_only_openapi_3_0_keywords() -> None:
    doc = openapi_document()
    assert doc["openapi"] == "3.0.3"
    for node in nodes(doc["components"]):
        # JSON Schema 2020-12 spellings pydantic would give: 3.0 has `nullable` instead of
        # a null type, no `const` or `$defs`, and boolean exclusive bounds.
        assert node.get("type") != "null", node
        assert not isinstance(node.get("type"), list), node
        assert "const" not in node and "$defs" not in node, node
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert not isinstance(node.get(bound), int | float) or node[bound] is True, node
        assert not isinstance(node.get("title"), str), node


def test_a_field_that_may_be_null_is_nullable_and_still_refers_to_its_model() -> None:
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["NotificationWithTimeline"]["properties"]["actions"] == {
        "allOf": [{"$ref": PREFIX + "GroupActions"}],
        "nullable": True,
    }
    assert schemas["NotificationPage"]["properties"]["next_cursor"]["nullable"] is True
    assert "next_cursor" in schemas["NotificationPage"]["required"]


def test_a_request_body_read_by_a_model_is_described_by_that_model() -> None:
    argocd = openapi_document()["components"]["schemas"]["ArgoCDWebhook"]
    assert argocd["required"] == ["trigger", "app"]
    assert {"operationPhase", "repoURL", "finishedAt"} <= set(argocd["properties"])
