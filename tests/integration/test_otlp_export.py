"""Spans exported over OTLP/HTTP (protobuf) to a real little collector in the test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from conftest import StartPlatform
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

APP = """
import squall

app = squall.App("otlp-shop")


@app.function()
def work(event, ctx):
    with ctx.span("inner", step=1):
        pass
    return event
"""


class Collector(HTTPServer):
    requests: list[tuple[str, str, ExportTraceServiceRequest]]


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append((self.path, self.headers["Content-Type"], request))
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_spans_reach_an_otlp_collector(
    platform: StartPlatform, collector: Collector
) -> None:
    port = collector.server_address[1]
    p = await platform(APP, otlp_endpoint=f"http://127.0.0.1:{port}")
    record = await p.invoke("work", b'{"n": 1}')
    assert record.status == "succeeded"
    await p.tracing.flush()
    await asyncio.to_thread(p.tracing.provider.force_flush)
    assert collector.requests, "nothing arrived"
    path, content_type, _ = collector.requests[0]
    assert path == "/v1/traces"
    assert content_type == "application/x-protobuf"
    spans = {}
    for _, _, request in collector.requests:
        for resource_spans in request.resource_spans:
            service = {
                a.key: a.value.string_value for a in resource_spans.resource.attributes
            }["service.name"]
            assert service == "otlp-shop"
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    spans[span.name] = span
    invoke, inner = spans["invoke work"], spans["inner"]
    assert invoke.trace_id.hex() == record.trace_id
    assert inner.trace_id == invoke.trace_id
    assert inner.parent_span_id == invoke.span_id
    attributes = {a.key: a.value for a in invoke.attributes}
    assert attributes["squall.function"].string_value == "work"
    assert attributes["squall.invocation_id"].string_value == record.id
    assert {a.key: a.value.int_value for a in inner.attributes} == {"step": 1}
    assert "cold_start" in spans and "init" in spans
    # the same spans are stored locally too
    stored = {span.name for span in await p.traces.get(str(record.trace_id))}
    assert {"invoke work", "inner", "cold_start", "init"} <= stored
