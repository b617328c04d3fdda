"""Admin API for tables: the tables themselves, and their items for tools and tests.

    GET    /api/v1/tables                           every table (keys, indexes, items kept)
    POST   /api/v1/tables                           {"name", "partition_key", "sort_key"?, ...}
    GET    /api/v1/tables/{name}                    one table
    DELETE /api/v1/tables/{name}                    a table made here, with its items
    GET    /api/v1/tables/{name}/items              scan: ?limit=N&cursor=C
    PUT    /api/v1/tables/{name}/items              {"item", "if_not_exists"?, "if_version"?,
                                                     "condition"?}
    GET    /api/v1/tables/{name}/items/{partition}  ?sort=S (the sort key's value)
    PATCH  /api/v1/tables/{name}/items/{partition}  ?sort=S {"set", "remove", "add", ...}
    DELETE /api/v1/tables/{name}/items/{partition}  ?sort=S&if_version=V
    POST   /api/v1/tables/{name}/query              {"partition", "sort"?, "index"?, "limit"?,
                                                     "cursor"?, "descending"?}
    POST   /api/v1/tables/transact                  {"ops": [...]}, all or none

Writes here commit at once (no invocation holds them). A key value in the path or in
``?sort=`` is read as the table's key type: a number for ``"N"`` keys.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import ConfigError, InvalidInput, NotFound
from squall.gateway import tables_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.http import json_object, json_response, query_int, query_optional_int
from squall.model.tables import MAX_ITEM_BYTES, MAX_PAGE, TableConfig, table_config

if TYPE_CHECKING:
    from squall.engine.tables.service import Tables

MAX_BODY = MAX_ITEM_BYTES + 64 * 1024
MAX_TRANSACT_BODY = 4 * 1024 * 1024
_NUMBER_RE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
CREATE_FIELDS = {
    "name", "partition_key", "sort_key", "key_types", "indexes", "ttl_attribute", "stream",
}


class TablesAPI:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def routes(self) -> list[Route]:
        items = "/tables/{name}/items/{partition}"
        return [
            Route("/tables", self.list_tables, methods=["GET"]),
            Route("/tables", self.create, methods=["POST"]),
            Route("/tables/transact", self.transact, methods=["POST"]),
            Route("/tables/{name}", self.get, methods=["GET"]),
            Route("/tables/{name}", self.delete, methods=["DELETE"]),
            Route("/tables/{name}/items", self.scan, methods=["GET"]),
            Route("/tables/{name}/items", self.put_item, methods=["PUT"]),
            Route(items, self.get_item, methods=["GET"]),
            Route(items, self.update_item, methods=["PATCH"]),
            Route(items, self.delete_item, methods=["DELETE"]),
            Route("/tables/{name}/query", self.query, methods=["POST"]),
        ]

    async def list_tables(self, request: Request) -> Response:
        views = [await self.tables.describe(config.name) for config in self.tables.all()]
        return json_response({"tables": views})

    async def create(self, request: Request) -> Response:
        body = await json_object(request, 64 * 1024)
        _only(body, CREATE_FIELDS)
        for field in ("name", "partition_key"):
            if field not in body:
                raise InvalidInput(f"'{field}' is required", field=field)
        try:
            config = table_config(
                body["name"],
                partition_key=body["partition_key"],
                sort_key=body.get("sort_key"),
                key_types=body.get("key_types"),
                indexes=body.get("indexes"),
                ttl_attribute=body.get("ttl_attribute"),
                stream=body.get("stream"),
            )
        except ConfigError as exc:
            raise InvalidInput(exc.message, field=exc.field) from None
        await self.tables.create(config)
        return json_response(await self.tables.describe(config.name), 201)

    async def get(self, request: Request) -> Response:
        return json_response(await self.tables.describe(request.path_params["name"]))

    async def delete(self, request: Request) -> Response:
        name = self.tables.get(request.path_params["name"]).name
        await self.tables.delete(name)
        return json_response({"deleted": name})

    async def scan(self, request: Request) -> Response:
        name = self.tables.get(request.path_params["name"]).name
        limit = query_int(request, "limit", 100, maximum=MAX_PAGE)
        page = await self.tables.scan(name, limit=limit, cursor=request.query_params.get("cursor"))
        return json_response(page)

    async def put_item(self, request: Request) -> Response:
        name = self.tables.get(request.path_params["name"]).name
        body = await json_object(request, MAX_BODY)
        _only(body, {"item", "if_not_exists", "if_version", "condition"})
        if "item" not in body:
            raise InvalidInput("'item' is required", field="item")
        item = await self.tables.put(
            name,
            body["item"],
            if_not_exists=body.get("if_not_exists", False),
            if_version=body.get("if_version"),
            condition=body.get("condition"),
        )
        return json_response(item)

    async def get_item(self, request: Request) -> Response:
        config, key = self._key(request)
        item = await self.tables.get_item(config.name, key)
        if item is None:
            raise NotFound(
                f"table {config.name!r} has no item {key}", field="key", table=config.name
            )
        return json_response(item)

    async def update_item(self, request: Request) -> Response:
        config, key = self._key(request)
        body = await json_object(request, MAX_BODY)
        _only(body, {"set", "remove", "add", "if_version", "condition"})
        item = await self.tables.update(
            config.name,
            key,
            set=body.get("set"),
            remove=body.get("remove"),
            add=body.get("add"),
            if_version=body.get("if_version"),
            condition=body.get("condition"),
        )
        return json_response(item)

    async def delete_item(self, request: Request) -> Response:
        config, key = self._key(request)
        version = query_optional_int(request, "if_version")
        old = await self.tables.delete_item(config.name, key, if_version=version)
        return json_response({"deleted": key, "old": old})

    async def query(self, request: Request) -> Response:
        name = self.tables.get(request.path_params["name"]).name
        body = await json_object(request, 64 * 1024)
        _only(body, {"partition", "sort", "index", "limit", "cursor", "descending"})
        if "partition" not in body:
            raise InvalidInput("'partition' is required", field="partition")
        page = await self.tables.query(
            name,
            body["partition"],
            sort=body.get("sort"),
            index=body.get("index"),
            limit=_integral(body.get("limit", 100)),
            cursor=body.get("cursor"),
            descending=body.get("descending", False),
        )
        return json_response(page)

    async def transact(self, request: Request) -> Response:
        body = await json_object(request, MAX_TRANSACT_BODY)
        _only(body, {"ops"})
        if "ops" not in body:
            raise InvalidInput("'ops' is required", field="ops")
        return json_response({"results": await self.tables.transact(body["ops"])})

    def _key(self, request: Request) -> tuple[TableConfig, dict[str, Any]]:
        config = self.tables.get(request.path_params["name"])
        key = {
            config.partition_key: _typed(
                config, config.partition_key, request.path_params["partition"], "partition"
            )
        }
        sort = request.query_params.get("sort")
        if config.sort_key is not None:
            if sort is None:
                raise InvalidInput(
                    f"?sort= is required: table {config.name!r} has the sort key"
                    f" {config.sort_key!r}",
                    field="sort",
                )
            key[config.sort_key] = _typed(config, config.sort_key, sort, "sort")
        elif sort is not None:
            raise InvalidInput(f"table {config.name!r} has no sort key", field="sort")
        return config, key


def _typed(config: TableConfig, attribute: str, raw: str, field: str) -> Any:
    if config.key_type(attribute) == "S":
        if not raw:
            raise InvalidInput(f"{field} must not be empty", field=field)
        return raw
    if not _NUMBER_RE.fullmatch(raw):
        raise InvalidInput(
            f"{field}: key attribute {attribute!r} is a number (type 'N'), got {raw!r}",
            field=field,
        )
    number = float(raw)
    if number.is_integer() and abs(number) < 2**53:
        return int(number)
    return number


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
            field=unknown[0],
        )
