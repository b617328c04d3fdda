"""Admin API for event schemas.

    PUT    /api/v1/schemas/{type}/{version}[?force=true]   body: the JSON Schema
    GET    /api/v1/schemas                                 types and their versions
    GET    /api/v1/schemas/{type}                          one type's versions
    GET    /api/v1/schemas/{type}/{version}                one version, with its schema
    DELETE /api/v1/schemas/{type}[/{version}]              every version, or one
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.gateway import schemas_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.body import read_body
from squall.gateway.http import json_object, json_response, query_choice
from squall.model.schemas import SchemaRecord, check_type, check_version

if TYPE_CHECKING:
    from squall.engine.schemas import SchemaRegistry

MAX_SCHEMA_BODY = 512 * 1024


class SchemasAPI:
    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry

    def routes(self) -> list[Route]:
        return [
            Route("/schemas", self.list_types, methods=["GET"]),
            Route("/schemas/{type}", self.list_versions, methods=["GET"]),
            Route("/schemas/{type}", self.delete_type, methods=["DELETE"]),
            Route("/schemas/{type}/{version}", self.get_version, methods=["GET"]),
            Route("/schemas/{type}/{version}", self.put_version, methods=["PUT"]),
            Route("/schemas/{type}/{version}", self.delete_version, methods=["DELETE"]),
        ]

    async def list_types(self, request: Request) -> Response:
        types = [
            {"type": name, "versions": versions, "latest": versions[-1]}
            for name, versions in self.registry.types().items()
        ]
        return json_response({"schemas": types})

    async def list_versions(self, request: Request) -> Response:
        records = self.registry.versions(request.path_params["type"])
        return json_response(
            {
                "type": records[0].type,
                "latest": records[-1].version,
                "versions": [_summary(r) for r in records],
            }
        )

    async def get_version(self, request: Request) -> Response:
        event_type, version = _names(request)
        return json_response(self.registry.get(event_type, version).public())

    async def put_version(self, request: Request) -> Response:
        event_type, version = _names(request)
        force = query_choice(request, "force", ("true", "false")) == "true"
        await read_body(request, MAX_SCHEMA_BODY)
        schema = await json_object(request, MAX_SCHEMA_BODY)
        done = await self.registry.put(event_type, version, schema, force=force)
        body = {**done.record.public(), "created": done.created, "forced": done.forced}
        return json_response(body, 201 if done.created else 200)

    async def delete_type(self, request: Request) -> Response:
        event_type = check_type(request.path_params["type"])
        deleted = await self.registry.delete(event_type)
        return json_response({"type": event_type, "deleted": deleted})

    async def delete_version(self, request: Request) -> Response:
        event_type, version = _names(request)
        deleted = await self.registry.delete(event_type, version)
        return json_response({"type": event_type, "deleted": deleted})


def _names(request: Request) -> tuple[str, int]:
    return check_type(request.path_params["type"]), check_version(request.path_params["version"])


def _summary(record: SchemaRecord) -> dict[str, Any]:
    return {"version": record.version, "uri": record.uri, "created_at": record.created_at}
