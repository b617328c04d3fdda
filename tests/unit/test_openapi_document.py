"""The OpenAPI document's assembly: conventions every operation follows, and fragments."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from squall.gateway import keys_openapi, openapi
from squall.gateway.openapi import Fragment, json_body, ok, openapi_document, operation, ref


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    saved = list(openapi._registry)
    yield
    openapi._registry[:] = saved


def test_every_operation_follows_the_conventions() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    ids = set()
    for path, item in document["paths"].items():
        for method, op in item.items():
            ids.add(op["operationId"])
            assert "500" in op["responses"], (method, path)
            secured = path.startswith("/api/v1/") and path != "/api/v1/openapi.json"
            assert (op["security"] == [{"bearer": []}]) == secured, (method, path)
            if secured:
                assert {"401", "403", "429"} <= set(op["responses"]), (method, path)
            for status, response in op["responses"].items():
                if status[0] in "45" and path != "/readyz":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == ref("Error"), (method, path, status)
    assert len(ids) == sum(len(item) for item in document["paths"].values())


def test_schemas_referenced_exist() -> None:
    document = openapi_document()
    names = set(document["components"]["schemas"])

    def refs(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"].rsplit("/", 1)[-1]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    assert set(refs(document)) <= names


def test_function_update_schema_carries_the_ranges() -> None:
    update = openapi_document()["components"]["schemas"]["FunctionUpdate"]
    assert update["additionalProperties"] is False
    assert update["properties"]["memory_mb"]["minimum"] == 128
    assert "name" not in update["properties"]


def _widgets_fragment() -> Fragment:
    return Fragment(
        paths={
            "/api/v1/widgets": {
                "get": operation(
                    "listWidgets", "List widgets", tag="widgets", responses=ok(ref("WidgetList"))
                ),
                "post": operation(
                    "createWidget",
                    "Create a widget",
                    tag="widgets",
                    body=json_body(ref("WidgetCreate"), required=True),
                    responses=ok(ref("WidgetList"), status=201),
                    errors=(400,),
                ),
            }
        },
        schemas={"WidgetList": {"type": "object"}, "WidgetCreate": {"type": "object"}},
        tags=[{"name": "widgets", "description": "Widgets"}],
    )


def test_registered_and_extra_fragments_are_merged() -> None:
    openapi.register(_widgets_fragment())
    extra = Fragment(
        paths={"/api/v1/widgets": {"delete": operation("x", "x", tag="widgets", responses={})}}
    )
    document = openapi_document([extra])
    assert set(document["paths"]["/api/v1/widgets"]) == {"get", "post", "delete"}
    assert "WidgetList" in document["components"]["schemas"]
    assert "widgets" in [tag["name"] for tag in document["tags"]]


def test_clashes_are_errors() -> None:
    openapi.register(_widgets_fragment())
    with pytest.raises(ValueError, match="GET /api/v1/widgets is defined twice"):
        openapi_document([_widgets_fragment()])
    clash = Fragment(paths={}, schemas={"Error": {"type": "string"}})
    with pytest.raises(ValueError, match="'Error' is defined twice"):
        openapi_document([clash])


def test_keys_and_secrets_are_documented() -> None:
    assert keys_openapi.FRAGMENT in openapi._registry  # registered at import
    document = openapi_document()
    paths = document["paths"]
    expected = {
        ("/api/v1/keys", "post"): ({"201"}, {"400", "413", "415"}),
        ("/api/v1/keys", "get"): ({"200"}, set()),
        ("/api/v1/keys/{id}", "delete"): ({"200"}, {"404", "409"}),
        ("/api/v1/secrets", "get"): ({"200"}, set()),
        ("/api/v1/secrets/{name}", "put"): ({"200", "201"}, {"400", "413", "415"}),
        ("/api/v1/secrets/{name}", "delete"): ({"200"}, {"400", "404"}),
    }
    for (path, method), (successes, errors) in expected.items():
        op = paths[path][method]
        codes = set(op["responses"])
        assert {code for code in codes if code[0] == "2"} == successes, (method, path)
        assert errors | {"401", "403", "429", "500"} == codes - successes, (method, path)
        assert "X-Api-Key" in op["description"] and "admin" in op["description"]
    schemas = document["components"]["schemas"]
    assert schemas["ApiKeyCreate"]["required"] == ["name", "scopes"]
    assert schemas["Scope"]["enum"] == ["invoke", "publish", "read", "admin"]
    assert "key" not in schemas["ApiKey"]["properties"]  # only the 201 carries the text
    assert "value" not in schemas["SecretInfo"]["properties"]


def test_rules_and_buses_are_documented() -> None:
    from squall.gateway import rules_openapi

    assert rules_openapi.FRAGMENT in openapi._registry  # registered at import
    document = openapi_document()
    paths = document["paths"]
    expected = {
        ("/api/v1/rules", "get"): ({"200"}, set()),
        ("/api/v1/rules", "post"): ({"201"}, {"400", "409", "413", "415"}),
        ("/api/v1/rules/{name}", "get"): ({"200"}, {"400", "404"}),
        ("/api/v1/rules/{name}", "put"): ({"200", "201"}, {"400", "409", "413", "415"}),
        ("/api/v1/rules/{name}", "patch"): ({"200"}, {"400", "404", "409", "413", "415"}),
        ("/api/v1/rules/{name}", "delete"): ({"200"}, {"400", "404", "409"}),
        ("/api/v1/buses", "get"): ({"200"}, set()),
    }
    for (path, method), (successes, errors) in expected.items():
        codes = set(paths[path][method]["responses"])
        assert {code for code in codes if code[0] == "2"} == successes, (method, path)
        assert errors | {"401", "403", "429", "500"} == codes - successes, (method, path)
    schemas = document["components"]["schemas"]
    kinds = {"function", "bus", "http", "queue"}
    assert set(schemas["Target"]["discriminator"]["mapping"]) == kinds
    assert schemas["RetryPolicy"]["properties"]["max_attempts"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 185,
    }
    assert schemas["RuleCreate"]["required"] == ["name", "pattern"]
    assert "origin" not in schemas["RuleCreate"]["properties"]
    assert "origin" in schemas["Rule"]["required"]
