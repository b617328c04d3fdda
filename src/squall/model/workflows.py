"""Code workflows: a workflow's declaration, its runs and the steps each run recorded."""

from __future__ import annotations

import enum
import re
from typing import Any

import msgspec

from squall.errors import ConfigError, InvalidInput

WORKFLOW_QUEUE_PREFIX = "wf:"  # a run's delivery is on wf:<workflow>
WORKFLOW_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


class WorkflowConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``@app.workflow()``: the function that runs it has the same name."""

    name: str
    step_retries: int = 3  # retries of a failed step after its first attempt
    step_backoff_s: float = 1.0  # first retry's delay; doubles each time, capped at 60 s
    run_retries: int = 5  # replays after the workflow's sandbox itself failed (crash, timeout)
    description: str = ""

    def validate(self) -> None:
        if not 0 <= self.step_retries <= 100:
            raise ConfigError(
                f"workflow {self.name!r}: step_retries={self.step_retries} must be within 0..100",
                field="step_retries",
            )
        if not 0 <= self.step_backoff_s <= 3600:
            raise ConfigError(
                f"workflow {self.name!r}: step_backoff_s={self.step_backoff_s} must be"
                " within 0..3600",
                field="step_backoff_s",
            )
        if not 0 <= self.run_retries <= 100:
            raise ConfigError(
                f"workflow {self.name!r}: run_retries={self.run_retries} must be within 0..100",
                field="run_retries",
            )


class RunStatus(enum.StrEnum):
    PENDING = "pending"  # queued, not yet run
    RUNNING = "running"
    SLEEPING = "sleeping"  # suspended on a durable timer
    WAITING = "waiting"  # suspended until an event (or its timeout)
    COMPLETED = "completed"
    FAILED = "failed"
    COMPENSATED = "compensated"  # failed, and every compensation ran
    COMPENSATION_FAILED = "compensation_failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset(
    {
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.COMPENSATED,
        RunStatus.COMPENSATION_FAILED,
        RunStatus.CANCELLED,
    }
)


class StepKind(enum.StrEnum):
    STEP = "step"  # wf.step: a function run in the workflow's sandbox
    INVOKE = "invoke"  # wf.invoke: a platform function, invoked synchronously
    SLEEP = "sleep"
    WAIT = "wait"  # wf.wait_for_event
    COMPENSATE = "compensate"
    CHILD = "child"  # wf.start_child: the child run's id
    JOIN = "join"  # wf.wait_child: the child run's result
    STATE = "state"  # wf.record: an ASL state exited, with its input and output or error


class StepStatus(enum.StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    SLEEPING = "sleeping"
    WAITING = "waiting"


class StepRecord(msgspec.Struct, kw_only=True):
    """One checkpoint of a run: position, what ran, and how it ended."""

    run_id: str
    seq: int  # position in the run, from 0
    name: str
    kind: str
    status: str
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    started_at: float
    ended_at: float | None = None
    wake_at: float | None = None  # sleeps: when; waits: the timeout (None: none)
    event_type: str | None = None  # waits
    pattern: dict[str, Any] | None = None
    bus: str | None = None


class WorkflowRun(msgspec.Struct, kw_only=True):
    id: str  # the workflow id, the idempotency key of its start
    workflow: str
    status: str
    input: Any = None
    result: Any = None
    error: dict[str, Any] | None = None
    created_at: float
    updated_at: float
    replays: int = 0  # sandbox invocations that ran it
    failures: int = 0  # replays that failed outside the workflow code (crash, timeout)
    cancel_requested: bool = False
    compensation_errors: list[dict[str, Any]] = []
    # The workflow function's version the run started on: later replays run that code, so a
    # deploy never changes the code under a run midway (pinned at its first replay).
    version: int | None = None


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not WORKFLOW_ID_RE.match(run_id):
        raise InvalidInput(
            f"id={run_id!r} must be 1-128 letters, digits or ._:@- starting with a letter"
            " or digit",
            field="id",
        )
    return run_id


def workflow_queue(workflow: str) -> str:
    """The work queue of a workflow's runs."""
    return WORKFLOW_QUEUE_PREFIX + workflow
