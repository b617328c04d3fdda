"""The OpenAPI fragment of the usage summary and cost operations (``metrics_api``)."""

from __future__ import annotations

from squall.gateway import openapi
from squall.gateway.openapi import API_PREFIX, Fragment, JSONSchema, nullable, ok, operation, query
from squall.observe.cost import BY
from squall.observe.series import MAX_POINTS, MIN_STEP_S

_NUMBER: JSONSchema = {"type": "number"}
_COUNT: JSONSchema = {"type": "integer", "minimum": 0}
_WINDOW = [
    query("since", _NUMBER, "Start of the window, epoch seconds (invocations created since)"),
    query("until", _NUMBER, "End of the window, epoch seconds (default: now)"),
]


def _usage(extra: dict[str, JSONSchema], optional: tuple[str, ...] = ()) -> JSONSchema:
    fields: dict[str, JSONSchema] = {
        **extra,
        "requests": _COUNT,
        "billed_ms": _COUNT,
        "gb_seconds": {**_NUMBER, "description": "memory_mb / 1024 x billed_ms / 1000, summed"},
        "request_usd": _NUMBER,
        "compute_usd": _NUMBER,
        "total_usd": _NUMBER,
    }
    return {
        "type": "object",
        "required": [name for name in fields if name not in optional],
        "additionalProperties": False,
        "properties": fields,
    }


def _schemas() -> dict[str, JSONSchema]:
    row: dict[str, JSONSchema] = {
        "function": {"type": "string"},
        "invocations": _COUNT,
        "errors": _COUNT,
        "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "throttles": {
            **_COUNT,
            "description": "Sync calls refused at the concurrency limit (kept in memory)",
        },
        "cold_starts": _COUNT,
        "p50_ms": nullable(_NUMBER),
        "p99_ms": nullable(_NUMBER),
    }
    point: dict[str, JSONSchema] = {
        "t": {**_NUMBER, "description": "Start of the bucket, epoch seconds"},
        "invocations": _COUNT,
        "errors": _COUNT,
        "cold_starts": _COUNT,
        "p50_ms": nullable(_NUMBER),
        "p99_ms": nullable(_NUMBER),
        "cost_usd": _NUMBER,
    }
    budget: dict[str, JSONSchema] = {
        "function": nullable({"type": "string"}),
        "period": {"type": "string", "enum": ["day", "month"]},
        "usd": _NUMBER,
        "stop": {"type": "boolean"},
        "spend_usd": _NUMBER,
        "period_start": nullable(_NUMBER),
        "exceeded": {"type": "boolean"},
    }
    return {
        "MetricsSummary": {
            "type": "object",
            "required": ["since", "until", "functions"],
            "additionalProperties": False,
            "properties": {
                "since": _NUMBER,
                "until": _NUMBER,
                "functions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": list(row),
                        "additionalProperties": False,
                        "properties": row,
                    },
                },
            },
        },
        "MetricsSeries": {
            "type": "object",
            "required": ["since", "until", "step", "function", "points"],
            "additionalProperties": False,
            "properties": {
                "since": _NUMBER,
                "until": _NUMBER,
                "step": {**_NUMBER, "description": "Width of each point's bucket, seconds"},
                "function": nullable({"type": "string"}),
                "points": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": list(point),
                        "additionalProperties": False,
                        "properties": point,
                    },
                },
            },
        },
        "CostReport": {
            "type": "object",
            "required": ["by", "since", "until", "prices", "rows", "total", "budgets"],
            "additionalProperties": False,
            "properties": {
                "by": {"type": "string", "enum": list(BY)},
                "since": _NUMBER,
                "until": _NUMBER,
                "prices": {
                    "type": "object",
                    "required": ["request_usd_per_million", "gb_second_usd"],
                    "additionalProperties": False,
                    "properties": {"request_usd_per_million": _NUMBER, "gb_second_usd": _NUMBER},
                },
                "rows": {
                    "type": "array",
                    "description": "One row per function or day, named by `function` or `day`",
                    "items": _usage(
                        {
                            "function": {"type": "string"},
                            "day": {"type": "string", "format": "date"},
                        },
                        optional=("function", "day"),
                    ),
                },
                "total": _usage({}),
                "budgets": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": list(budget),
                        "additionalProperties": False,
                        "properties": budget,
                    },
                },
            },
        },
    }


openapi.register(
    Fragment(
        paths={
            f"{API_PREFIX}/metrics/summary": {
                "get": operation(
                    "metricsSummary",
                    "Per-function invocations, errors, throttles, cold starts and p50/p99",
                    tag="metrics",
                    description=(
                        "Computed from the stored invocation records created in the window"
                        " (default: the last hour). Prometheus metrics are at /metrics."
                    ),
                    parameters=_WINDOW,
                    responses=ok(openapi.ref("MetricsSummary")),
                    errors=(400,),
                )
            },
            f"{API_PREFIX}/metrics/series": {
                "get": operation(
                    "metricsSeries",
                    "Invocations, errors, cold starts, p50/p99 and cost per time bucket",
                    tag="metrics",
                    description=(
                        "From the stored invocation records created in the window (default:"
                        " the last hour), one point per `step` seconds from `since` (at most"
                        f" {MAX_POINTS} points). The dashboard's overview charts."
                    ),
                    parameters=[
                        *_WINDOW,
                        query(
                            "step",
                            {"type": "number", "minimum": MIN_STEP_S},
                            "Bucket width, seconds (default 60)",
                        ),
                        query("function", {"type": "string"}, "Only this function's invocations"),
                    ],
                    responses=ok(openapi.ref("MetricsSeries")),
                    errors=(400,),
                )
            },
            f"{API_PREFIX}/cost": {
                "get": operation(
                    "cost",
                    "Requests, GB-seconds and cost by function or UTC day",
                    tag="metrics",
                    description=(
                        "From the stored invocation records created in the window (default:"
                        " the last 7 days), priced with the platform's price table."
                    ),
                    parameters=[
                        query("by", {"type": "string", "enum": list(BY)}, "Group rows by"),
                        *_WINDOW,
                    ],
                    responses=ok(openapi.ref("CostReport")),
                    errors=(400,),
                )
            },
        },
        schemas=_schemas(),
        tags=[{"name": "metrics", "description": "Usage, cost and budgets"}],
    )
)
