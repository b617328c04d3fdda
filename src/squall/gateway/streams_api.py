"""Admin API for streams: producers and external readers.

    GET    /api/v1/streams                                every stream, its records and consumers
    POST   /api/v1/streams                                {"name", "shards"?, "retention_s"?}
    GET    /api/v1/streams/{name}                         shards (first/last sequence), consumer lag
    DELETE /api/v1/streams/{name}                         a stream made here, with its records
    GET    /api/v1/streams/{name}/shards/{shard}/records  ?after=SEQ&limit=N, in sequence order
    POST   /api/v1/streams/{name}/records                 {"data", "partition_key"} or
                                                          {"records": [{"data", "partition_key"}]}
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import InvalidInput
from squall.gateway import streams_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.http import json_object, json_response, query_int
from squall.model.streams import DEFAULT_RETENTION_S, MAX_PUT_RECORDS

if TYPE_CHECKING:
    from squall.engine.streams.log import Streams

# Kinesis takes 5 MiB per PutRecords; JSON text around the data gets some room on top.
MAX_BODY = 6 * 1024 * 1024
MAX_READ = 10_000
_SHARD_RE = re.compile(r"[0-9]{1,4}")


class StreamsAPI:
    def __init__(self, streams: Streams) -> None:
        self.streams = streams

    def routes(self) -> list[Route]:
        return [
            Route("/streams", self.list_streams, methods=["GET"]),
            Route("/streams", self.create, methods=["POST"]),
            Route("/streams/{name}", self.get, methods=["GET"]),
            Route("/streams/{name}", self.delete, methods=["DELETE"]),
            Route("/streams/{name}/shards/{shard}/records", self.read, methods=["GET"]),
            Route("/streams/{name}/records", self.put, methods=["POST"]),
        ]

    async def list_streams(self, request: Request) -> Response:
        views = [await self.streams.describe(config.name) for config in self.streams.all()]
        return json_response({"streams": views})

    async def create(self, request: Request) -> Response:
        body = await json_object(request, 64 * 1024)
        _only(body, {"name", "shards", "retention_s"})
        if "name" not in body:
            raise InvalidInput("'name' is required", field="name")
        config = await self.streams.create(
            body["name"],
            shards=_integral(body.get("shards", 1)),
            retention_s=_integral(body.get("retention_s", DEFAULT_RETENTION_S)),
        )
        return json_response(await self.streams.describe(config.name), 201)

    async def get(self, request: Request) -> Response:
        return json_response(await self.streams.describe(request.path_params["name"]))

    async def delete(self, request: Request) -> Response:
        name = self.streams.get(request.path_params["name"]).name
        await self.streams.delete(name)
        return json_response({"deleted": name})

    async def read(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.streams.get(name)  # an unknown stream is 404 before the shard is looked at
        raw = request.path_params["shard"]
        if not _SHARD_RE.fullmatch(raw):
            raise InvalidInput(f"shard must be a shard number, got {raw!r}", field="shard")
        shard = int(raw)
        after = query_int(request, "after", 0, minimum=0, maximum=2**63 - 1)
        limit = query_int(request, "limit", 100, maximum=MAX_READ)
        records = await self.streams.read(name, shard, after, limit)
        return json_response(
            {
                "stream": name,
                "shard": shard,
                "records": records,
                "next_after": records[-1].sequence if records else after,
                "head": await self.streams.head(name, shard),
            }
        )

    async def put(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.streams.get(name)
        body = await json_object(request, MAX_BODY)
        if "records" in body:
            _only(body, {"records"})
            entries = body["records"]
            if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_PUT_RECORDS:
                raise InvalidInput(
                    f"records must be a list of 1-{MAX_PUT_RECORDS} records", field="records"
                )
            prefix = "records[{}]."
        else:
            entries = [body]
            prefix = ""
        records = []
        for index, entry in enumerate(entries):
            where = prefix.format(index)
            if not isinstance(entry, dict):
                field = where.rstrip(".") or "body"
                raise InvalidInput(f"{field} must be a JSON object (a record)", field=field)
            _only(entry, {"data", "partition_key"}, where)
            for field in ("data", "partition_key"):
                if field not in entry:
                    raise InvalidInput(f"{where}{field} is required", field=f"{where}{field}")
            try:
                data = msgspec.json.encode(entry["data"])
            except UnicodeEncodeError:
                raise InvalidInput(
                    f"{where}data holds text that is not valid Unicode (a lone surrogate)",
                    field=f"{where}data",
                ) from None
            records.append((data, entry["partition_key"]))
        results = await self.streams.put(name, records, batch="records" in body)
        return json_response({"stream": name, "records": results})


def _integral(value: Any) -> Any:
    """JSON Schema's integers include 46.0: take it as 46 (other values are checked later)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _only(body: dict[str, Any], allowed: set[str], where: str = "") -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown field {where}{unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
            field=f"{where}{unknown[0]}",
        )
