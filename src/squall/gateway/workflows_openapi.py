"""The OpenAPI fragment of the workflows API (``gateway.workflows_api``), registered at import."""

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
from squall.model.workflows import RunStatus, StepKind, StepStatus

TAG = "workflows"
ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
_EPOCH: JSONSchema = {"type": "number", "description": "Epoch seconds"}
_ERROR: JSONSchema = nullable({"type": "object", "description": "type, message, details"})


def _object(properties: dict[str, JSONSchema], required: list[str] | None = None) -> JSONSchema:
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
        "properties": properties,
    }


def _schemas() -> dict[str, JSONSchema]:
    run = _object(
        {
            "id": {"type": "string", "description": "The workflow id (idempotency key)"},
            "workflow": {"type": "string"},
            "status": {"type": "string", "enum": [s.value for s in RunStatus]},
            "input": {"description": "Any JSON"},
            "result": {"description": "The workflow's return value once completed"},
            "error": _ERROR,
            "created_at": _EPOCH,
            "updated_at": _EPOCH,
            "replays": {"type": "integer", "minimum": 0},
            "failures": {"type": "integer", "minimum": 0},
            "cancel_requested": {"type": "boolean"},
            "compensation_errors": {"type": "array", "items": {"type": "object"}},
            "version": nullable(
                {"type": "integer", "description": "The function version the run is pinned to"}
            ),
        }
    )
    step = _object(
        {
            "run_id": {"type": "string"},
            "seq": {"type": "integer", "minimum": 0, "description": "Position in the run"},
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": [k.value for k in StepKind]},
            "status": {"type": "string", "enum": [s.value for s in StepStatus]},
            "input": {"description": "The step's arguments"},
            "output": {"description": "Its checkpointed result (a wait: the event)"},
            "error": _ERROR,
            "attempts": {"type": "integer", "minimum": 0},
            "started_at": _EPOCH,
            "ended_at": nullable(_EPOCH),
            "wake_at": nullable({**_EPOCH, "description": "A sleep's end, a wait's timeout"}),
            "event_type": nullable({"type": "string"}),
            "pattern": nullable({"type": "object"}),
            "bus": nullable({"type": "string"}),
        }
    )
    workflow = _object(
        {
            "name": {"type": "string"},
            "step_retries": {"type": "integer", "minimum": 0},
            "step_backoff_s": {"type": "number", "minimum": 0},
            "run_retries": {"type": "integer", "minimum": 0},
            "description": {"type": "string"},
        }
    )
    return {
        "WorkflowRun": run,
        "WorkflowStep": step,
        "Workflow": workflow,
        "WorkflowList": _object({"workflows": {"type": "array", "items": ref("Workflow")}}),
        "WorkflowRunList": _object(
            {
                "runs": {"type": "array", "items": ref("WorkflowRun")},
                "next_cursor": nullable({"type": "string"}),
            }
        ),
        "WorkflowHistory": _object(
            {"run_id": {"type": "string"}, "steps": {"type": "array", "items": ref("WorkflowStep")}}
        ),
        "WorkflowStart": _object(
            {
                "input": {"description": "Any JSON: the workflow's input"},
                "id": {"type": "string", "pattern": ID_PATTERN},
            },
            [],
        ),
    }


def workflows_fragment() -> Fragment:
    p = API_PREFIX
    run_id = {**path_param("id", "Workflow run id"), "schema": {"type": "string"}}
    paths: dict[str, PathItem] = {
        f"{p}/workflows": {
            "get": operation(
                "listWorkflows", "The app's workflows", tag=TAG,
                responses=ok(ref("WorkflowList")),
            ),
        },
        f"{p}/workflows/{{name}}/runs": {
            "post": operation(
                "startWorkflow",
                "Start a workflow run (admin)",
                tag=TAG,
                description=(
                    "`id` is the run's idempotency key: a run of that id is answered as it is"
                    " with 200; a new one is 201. Unknown workflow 404; a body that is not JSON"
                    " or an invalid id is 400 naming the field."
                ),
                parameters=[path_param("name", "Workflow name")],
                body=json_body(ref("WorkflowStart")),
                responses={
                    **ok(ref("WorkflowRun"), "Already started"),
                    **ok(ref("WorkflowRun"), "Started", status=201),
                },
                errors=(400, 404, 409, 413, 415),
            ),
        },
        f"{p}/workflows/runs": {
            "get": operation(
                "listWorkflowRuns",
                "Workflow runs, newest first",
                tag=TAG,
                parameters=[
                    query("workflow", {"type": "string"}, "Only runs of this workflow"),
                    query("status", {"type": "string", "enum": [s.value for s in RunStatus]}),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                ],
                responses=ok(ref("WorkflowRunList")),
                errors=(400, 404),
            ),
        },
        f"{p}/workflows/runs/{{id}}": {
            "get": operation(
                "getWorkflowRun", "A run: its status, result or error", tag=TAG,
                parameters=[run_id], responses=ok(ref("WorkflowRun")), errors=(404,),
            ),
        },
        f"{p}/workflows/runs/{{id}}/history": {
            "get": operation(
                "getWorkflowHistory",
                "A run's steps in order: name, input, output or error, attempts, times",
                tag=TAG, parameters=[run_id], responses=ok(ref("WorkflowHistory")),
                errors=(404,),
            ),
        },
        f"{p}/workflows/runs/{{id}}/cancel": {
            "post": operation(
                "cancelWorkflowRun",
                "Cancel a run (admin): its compensations run; a finished run is left as is",
                tag=TAG, parameters=[run_id], responses=ok(ref("WorkflowRun")), errors=(404,),
            ),
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "Durable code workflows: runs, steps, sagas"}],
    )


FRAGMENT = openapi.register(workflows_fragment())
