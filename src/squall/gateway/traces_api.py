"""Admin API for traces (the dashboard reads exactly this).

    GET /api/v1/traces?limit=50&function=NAME&before=CURSOR   traces, newest first
    GET /api/v1/traces/{trace_id}                             one trace's spans by start
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.gateway import traces_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.http import json_response, query_int, query_str
from squall.model.traces import SpanRow

if TYPE_CHECKING:
    from squall.observe.trace_reads import Traces


def span_json(span: SpanRow) -> dict[str, Any]:
    return {
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "name": span.name,
        "kind": span.kind,
        "start": span.start,
        "end": span.end,
        "status": span.status,
        "attributes": span.attributes,
        "events": [msgspec.to_builtins(event) for event in span.events],
    }


class TracesAPI:
    def __init__(self, traces: Traces) -> None:
        self.traces = traces

    def routes(self) -> list[Route]:
        return [
            Route("/traces", self.list_traces, methods=["GET"]),
            Route("/traces/{trace_id}", self.get_trace, methods=["GET"]),
        ]

    async def list_traces(self, request: Request) -> Response:
        traces, cursor = await self.traces.page(
            function=query_str(request, "function"),
            limit=query_int(request, "limit", 50, maximum=1000),
            before=request.query_params.get("before"),
        )
        return json_response(
            {"traces": [msgspec.to_builtins(t) for t in traces], "next": cursor}
        )

    async def get_trace(self, request: Request) -> Response:
        trace_id = request.path_params["trace_id"]
        spans = await self.traces.get(trace_id)
        return json_response({"trace_id": trace_id, "spans": [span_json(s) for s in spans]})
