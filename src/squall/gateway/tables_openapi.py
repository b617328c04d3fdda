"""The OpenAPI fragment of the tables API (``gateway.tables_api``).

Registered at import. GETs and queries need the ``read`` scope; writing items (put, update,
delete, transact) ``publish``; creating and deleting tables ``admin``.
"""

from __future__ import annotations

from squall.gateway import openapi
from squall.gateway.openapi import (
    API_PREFIX,
    Fragment,
    JSONSchema,
    PathItem,
    json_body,
    nullable,
    ok,
    operation,
    path_param,
    query,
    ref,
)
from squall.model.tables import MAX_PAGE, MAX_TRANSACT, STREAM_VIEWS

TAG = "tables"
NAME_PATTERN = "^[a-zA-Z][a-zA-Z0-9_.-]{0,127}$"
ATTRIBUTE_PATTERN = "^[a-zA-Z_][a-zA-Z0-9_.-]{0,254}$"
_ATTRIBUTE: JSONSchema = {"type": "string", "pattern": ATTRIBUTE_PATTERN}
_KEY_VALUE: JSONSchema = {
    "oneOf": [{"type": "string", "minLength": 1}, {"type": "number"}],
    "description": "A key attribute's value: a string for 'S' keys, a number for 'N' keys",
}
_ITEM: JSONSchema = {
    "type": "object",
    "description": "A JSON object holding the table's key attributes (`_version` is ignored)",
}
_STORED: JSONSchema = {
    "type": "object",
    "required": ["_version"],
    "properties": {"_version": {"type": "integer", "minimum": 1}},
    "description": "The item with `_version`: 1 when inserted, one more at each write",
}
_TESTS = ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "begins_with", "contains",
          "exists")
_CONDITION: JSONSchema = {
    "type": "object",
    "description": (
        "Attribute tests that must all hold, e.g. `{\"status\": {\"eq\": \"open\"}, \"stock\":"
        " {\"gte\": 1}}`; a failing one is 409 ConditionFailed naming it"
    ),
    "additionalProperties": {
        "type": "object",
        "minProperties": 1,
        "propertyNames": {"enum": list(_TESTS)},
    },
}
_VERSION: JSONSchema = {
    "type": "integer",
    "minimum": 0,
    "description": "Only if the item is at this version (0: absent)",
}


def _object(required: list[str], properties: dict[str, JSONSchema]) -> JSONSchema:
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


def _schemas() -> dict[str, JSONSchema]:
    index: dict[str, JSONSchema] = {
        "name": {"type": "string"},
        "partition_key": _ATTRIBUTE,
        "sort_key": nullable(_ATTRIBUTE),
    }
    key_types: JSONSchema = {
        "type": "object",
        "additionalProperties": {"type": "string", "enum": ["S", "N"]},
        "description": "Type of each key attribute (tables' and indexes'): 'S' or 'N' (default"
        " 'S')",
    }
    table: dict[str, JSONSchema] = {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "partition_key": _ATTRIBUTE,
        "sort_key": nullable(_ATTRIBUTE),
        "key_types": key_types,
        "indexes": {"type": "array", "items": _object(list(index), index)},
        "ttl_attribute": nullable(_ATTRIBUTE),
        "stream": nullable({"type": "string", "enum": list(STREAM_VIEWS)}),
        "items": {"type": "integer", "minimum": 0, "description": "Items kept now"},
        "declared_by": {"type": "string", "enum": ["app", "api"]},
    }
    op_kinds = ["put", "update", "delete", "check"]
    return {
        "Table": _object(list(table), table),
        "TableList": _object(["tables"], {"tables": {"type": "array", "items": ref("Table")}}),
        "TableCreate": _object(
            ["name", "partition_key"],
            {
                "name": table["name"],
                "partition_key": _ATTRIBUTE,
                "sort_key": nullable(_ATTRIBUTE),
                "key_types": key_types,
                "indexes": {
                    "type": "object",
                    "description": "Index name -> its partition and sort key attributes",
                    "additionalProperties": _object(
                        ["partition_key"], {"partition_key": _ATTRIBUTE, "sort_key": _ATTRIBUTE}
                    ),
                },
                "ttl_attribute": nullable(_ATTRIBUTE),
                "stream": table["stream"],
            },
        ),
        "TableDeleted": _object(["deleted"], {"deleted": {"type": "string"}}),
        "TableItem": _STORED,
        "TableItemPut": _object(
            ["item"],
            {
                "item": _ITEM,
                "if_not_exists": {"type": "boolean", "default": False},
                "if_version": _VERSION,
                "condition": _CONDITION,
            },
        ),
        "TableItemUpdate": _object(
            [],
            {
                "set": {"type": "object", "description": "Attributes to set"},
                "remove": {"type": "array", "items": {"type": "string"}},
                "add": {"type": "object", "additionalProperties": {"type": "number"},
                        "description": "Numbers added to attributes (from 0 when absent)"},
                "if_version": _VERSION,
                "condition": _CONDITION,
            },
        ),
        "TableItemDeleted": _object(
            ["deleted", "old"], {"deleted": {"type": "object"}, "old": nullable(_STORED)}
        ),
        "TableQuery": _object(
            ["partition"],
            {
                "partition": _KEY_VALUE,
                "sort": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 3,
                    "description": "[op, value] (eq, lt, lte, gt, gte, begins_with) or"
                    " ['between', low, high]",
                },
                "index": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100},
                "cursor": {"type": "string"},
                "descending": {"type": "boolean", "default": False},
            },
        ),
        "TablePage": _object(
            ["items", "cursor"],
            {
                "items": {"type": "array", "items": _STORED},
                "cursor": {**nullable({"type": "string"}),
                           "description": "Pass it back for the next page (null: last page)"},
            },
        ),
        "TableTransact": _object(
            ["ops"],
            {
                "ops": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_TRANSACT,
                    "items": {
                        "type": "object",
                        "required": ["op", "table"],
                        "properties": {
                            "op": {"type": "string", "enum": op_kinds},
                            "table": {"type": "string"},
                        },
                        "description": "op, table, and the fields of that operation (item;"
                        " or key with set/remove/add; if_not_exists, if_version, condition)",
                    },
                }
            },
        ),
        "TableTransactResult": _object(
            ["results"], {"results": {"type": "array", "items": nullable(_STORED)}}
        ),
    }


def tables_fragment() -> Fragment:
    name = {**path_param("name", "Table name"), "schema": {"type": "string"}}
    partition = path_param("partition", "The partition key's value (a number for 'N' keys)")
    sort = query("sort", {"type": "string"}, "The sort key's value (required when it has one)")
    p = API_PREFIX
    paths: dict[str, PathItem] = {
        f"{p}/tables": {
            "get": operation(
                "listTables", "The tables: keys, indexes, TTL, change stream, items kept",
                tag=TAG, responses=ok(ref("TableList")),
            ),
            "post": operation(
                "createTable",
                "Create a table (admin)",
                tag=TAG,
                description="A taken name is 409. Change triggers are declared in the app.",
                body=json_body(ref("TableCreate"), required=True),
                responses=ok(ref("Table"), "Created", status=201),
                errors=(400, 409, 413, 415),
            ),
        },
        f"{p}/tables/transact": {
            "post": operation(
                "transactItems",
                "Puts, updates, deletes and checks on up to 100 items, all or none",
                tag=TAG,
                description="A failed condition is 409 ConditionFailed naming `ops[i]`.",
                body=json_body(ref("TableTransact"), required=True),
                responses=ok(ref("TableTransactResult")),
                errors=(400, 404, 409, 413, 415),
            ),
        },
        f"{p}/tables/{{name}}": {
            "get": operation(
                "getTable", "One table", tag=TAG, parameters=[name],
                responses=ok(ref("Table")), errors=(404,),
            ),
            "delete": operation(
                "deleteTable", "Delete a table made through the API, with its items (admin)",
                tag=TAG, parameters=[name], responses=ok(ref("TableDeleted")),
                errors=(404, 409),
            ),
        },
        f"{p}/tables/{{name}}/items": {
            "get": operation(
                "scanTable",
                "Every item, page by page, in key order",
                tag=TAG,
                parameters=[
                    name,
                    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                          "Page size (default 100)"),
                    query("cursor", {"type": "string"}, "The previous page's cursor"),
                ],
                responses=ok(ref("TablePage")),
                errors=(400, 404),
            ),
            "put": operation(
                "putItem",
                "Write a whole item, optionally only if a condition holds",
                tag=TAG,
                description=(
                    "Missing key attributes, or keys of the wrong type, are 400 naming"
                    " `item.<attribute>`; an item over 400 KiB as JSON is 413 with `size` and"
                    " `limit`; a failed condition is 409 ConditionFailed."
                ),
                parameters=[name],
                body=json_body(ref("TableItemPut"), required=True),
                responses=ok(ref("TableItem")),
                errors=(400, 404, 409, 413, 415),
            ),
        },
        f"{p}/tables/{{name}}/items/{{partition}}": {
            "get": operation(
                "getItem", "One item by key", tag=TAG, parameters=[name, partition, sort],
                responses=ok(ref("TableItem")), errors=(400, 404),
            ),
            "patch": operation(
                "updateItem",
                "Set, remove and add to attributes (an absent item is made from its key)",
                tag=TAG,
                parameters=[name, partition, sort],
                body=json_body(ref("TableItemUpdate"), required=True),
                responses=ok(ref("TableItem")),
                errors=(400, 404, 409, 413, 415),
            ),
            "delete": operation(
                "deleteItem",
                "Delete one item; returns what it was",
                tag=TAG,
                parameters=[name, partition, sort, query("if_version", _VERSION)],
                responses=ok(ref("TableItemDeleted")),
                errors=(400, 404, 409),
            ),
        },
        f"{p}/tables/{{name}}/query": {
            "post": operation(
                "queryTable",
                "One partition's items (of the table or an index) in sort order",
                tag=TAG,
                parameters=[name],
                body=json_body(ref("TableQuery"), required=True),
                responses=ok(ref("TablePage")),
                errors=(400, 404, 413, 415),
            ),
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "Key-value and document tables"}],
    )


FRAGMENT = openapi.register(tables_fragment())
