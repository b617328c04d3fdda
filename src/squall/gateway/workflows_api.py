"""Admin API for code workflows.

    GET    /api/v1/workflows                       the app's workflows
    POST   /api/v1/workflows/{name}/runs           start a run: {"input": …, "id": …}
    GET    /api/v1/workflows/runs                  runs, newest first (``workflow``, ``status``,
                                                   ``limit``, ``cursor``)
    GET    /api/v1/workflows/runs/{id}             a run: status, result or error
    GET    /api/v1/workflows/runs/{id}/history     its steps, in order
    POST   /api/v1/workflows/runs/{id}/cancel      cancel it (its compensations run)

The run id is the start's idempotency key: starting an id that exists answers 200 with that
run (201 when the start made it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import InvalidInput
from squall.gateway import workflows_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.http import json_object, json_response, query_choice, query_int, query_str
from squall.model.workflows import RunStatus, WorkflowRun

if TYPE_CHECKING:
    from squall.engine.workflows import Workflows

MAX_BODY = 512 * 1024
STATUSES = tuple(s.value for s in RunStatus)


def run_json(run: WorkflowRun) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(run)
    return body


class WorkflowsAPI:
    def __init__(self, workflows: Workflows) -> None:
        self.workflows = workflows

    def routes(self) -> list[Route]:
        return [
            Route("/workflows", self.list_workflows, methods=["GET"]),
            Route("/workflows/runs", self.list_runs, methods=["GET"]),
            Route("/workflows/runs/{id}", self.get_run, methods=["GET"]),
            Route("/workflows/runs/{id}/history", self.history, methods=["GET"]),
            Route("/workflows/runs/{id}/cancel", self.cancel, methods=["POST"]),
            Route("/workflows/{name}/runs", self.start, methods=["POST"]),
        ]

    async def list_workflows(self, request: Request) -> Response:
        configs = [msgspec.to_builtins(self.workflows.config(n)) for n in self.workflows.names()]
        return json_response({"workflows": configs})

    async def start(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.workflows.config(name)
        body = await json_object(request, MAX_BODY)
        unknown = sorted(set(body) - {"input", "id"})
        if unknown:
            raise InvalidInput(
                f"{unknown[0]!r} is not a field of a start (fields: input, id)", field=unknown[0]
            )
        run_id = body.get("id")
        if run_id is not None and not isinstance(run_id, str):
            raise InvalidInput(f"id={run_id!r} must be a string", field="id")
        run, created = await self.workflows.start(name, body.get("input"), run_id)
        return json_response(run_json(run), 201 if created else 200)

    async def list_runs(self, request: Request) -> Response:
        limit = query_int(request, "limit", 50, minimum=1, maximum=1000)
        runs = await self.workflows.runs(
            workflow=query_str(request, "workflow"),
            status=query_choice(request, "status", STATUSES),
            limit=limit + 1,
            before=query_str(request, "cursor"),
        )
        page = runs[:limit]
        cursor = page[-1].id if len(runs) > limit else None
        return json_response({"runs": [run_json(r) for r in page], "next_cursor": cursor})

    async def get_run(self, request: Request) -> Response:
        return json_response(run_json(await self.workflows.get(request.path_params["id"])))

    async def history(self, request: Request) -> Response:
        run_id = request.path_params["id"]
        steps = await self.workflows.history(run_id)
        return json_response({"run_id": run_id, "steps": msgspec.to_builtins(steps)})

    async def cancel(self, request: Request) -> Response:
        return json_response(run_json(await self.workflows.cancel(request.path_params["id"])))
