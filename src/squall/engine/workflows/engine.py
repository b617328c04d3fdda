"""Runs of code workflows: start, replay, suspend and resume, cancel.

Each run is driven by one delivery on its workflow's work queue (``wf:<name>``, deduplicated
by run id), leased no faster than the workflow's function has sandboxes for (its
``concurrency``).
Leasing it replays the run: the workflow's function is invoked synchronously with the run's
input and recorded history; the sandbox checkpoints each new step through a platform call
(committed at once, with the effects the step made), and the invocation ends by completing
or failing the run, or by suspending it. A suspended run's delivery is released until its
timer (a sleep's wake time, an event wait's timeout); an event that ends a wait, or a cancel,
makes it due at once. A crash of the platform leaves the delivery leased; it is released at
start and the run is replayed from its checkpoints, so a completed step never runs again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from squall.engine.effects import Effects
from squall.engine.retry import backoff_delay
from squall.engine.waiting import wait_woken
from squall.engine.workflows.waiters import Waiters
from squall.errors import (
    Conflict,
    EventWaitTimeout,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    SquallError,
    TooManyRequests,
)
from squall.model.cloudevent import CloudEvent
from squall.model.ids import new_id
from squall.model.invocation import InvocationRecord, InvocationStatus
from squall.model.workflows import (
    WORKFLOW_QUEUE_PREFIX,
    RunStatus,
    StepKind,
    StepRecord,
    StepStatus,
    WorkflowConfig,
    WorkflowRun,
    check_run_id,
    workflow_queue,
)
from squall.observe.tracing import (
    NO_SPAN,
    ROOT,
    SpanKind,
    Tracing,
    current_traceparent,
    parent_of,
    step_span,
    use_span,
)
from squall.storage.protocols import (
    Ack,
    CancelRun,
    Delivery,
    Op,
    PutRun,
    PutStep,
    ResolveStep,
    Retry,
    StartRun,
    Store,
    SuspendRun,
    WakeJoins,
    WakeRun,
)

log = logging.getLogger("squall.workflows")

QUEUE = WORKFLOW_QUEUE_PREFIX  # + the workflow's name
POLL_S = 1.0
FOREVER_S = 100 * 365 * 86400.0  # a wait without timeout: only its event wakes it
BUSY_RETRY_S = 0.5

# A sync invoke of a workflow's function: (workflow, payload, version pinned or None).
Invoke = Callable[[str, bytes, int | None], Awaitable[InvocationRecord]]
_decode_step = msgspec.json.Decoder(dict[str, Any]).decode


@dataclass
class WorkflowSettings:
    invoke: Invoke  # a sync invoke of the workflow's function
    timeout_s: Callable[[str], float]  # the function's timeout
    concurrency: Callable[[str], int]  # the function's concurrency
    max_input: int = 256 * 1024
    retry_base_s: float = 1.0
    retry_cap_s: float = 300.0
    tracing: Tracing | None = None  # spans for replays and steps


class Workflows:
    def __init__(
        self, store: Store, configs: Sequence[WorkflowConfig], settings: WorkflowSettings
    ) -> None:
        self._store = store
        self._configs = {config.name: config for config in configs}
        self._settings = settings
        self._waiters = Waiters()
        self._wakeup = asyncio.Event()
        self._tasks: dict[asyncio.Task[None], str] = {}  # replays running -> workflow
        self._active: dict[str, str] = {}  # run id -> workflow, while a replay runs
        self._starting = asyncio.Lock()
        self._rng = random.Random()

    # --- declarations --------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._configs)

    def config(self, name: str) -> WorkflowConfig:
        try:
            return self._configs[name]
        except KeyError:
            known = ", ".join(sorted(self._configs)) or "none"
            raise NotFound(
                f"workflow {name!r} does not exist (workflows: {known})",
                field="name",
                workflow=name,
            ) from None

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def wake(self) -> None:
        self._wakeup.set()

    async def load(self) -> None:
        """Register the event waits of suspended runs (at start)."""
        for step in await self._store.pending_waits():
            if step.kind != StepKind.WAIT:
                continue
            try:
                self._waiters.add(step)
            except InvalidInput:  # pragma: no cover - patterns are checked when recorded
                log.warning("run %s: the pattern of step #%d no longer compiles", step.run_id,
                            step.seq)

    # --- control -------------------------------------------------------------------------

    async def start(
        self,
        name: str,
        input: Any = None,
        run_id: str | None = None,
        traceparent: str | None = None,
    ) -> tuple[WorkflowRun, bool]:
        """Start a run (``run_id`` defaults to a new id); a run of that id that exists
        already is returned as it is, with ``False``."""
        run_id = new_id() if run_id is None else run_id
        op = self.start_op(name, run_id, input)
        async with self._starting:
            existing = await self._store.get_run(run_id)
            if existing is not None:
                if existing.workflow != name:
                    raise Conflict(
                        f"run {run_id!r} exists already, of workflow {existing.workflow!r}",
                        field="id",
                    )
                return existing, False
            traceparent = traceparent or current_traceparent()
            if traceparent is not None:  # the run's replays join its starter's trace
                op.delivery.headers["traceparent"] = traceparent
            await self._store.commit([op])
        self.wake()
        return op.run, True

    async def start_from_call(self, args: dict[str, Any], effects: Effects | None) -> str:
        """``ctx.start_workflow``: a start held with the calling invocation's effects (it
        happens when, and only if, the invocation succeeds); its run id."""
        name = str(args.get("workflow"))
        given = args.get("id")
        run_id = new_id() if given is None else str(given)
        try:
            input = msgspec.json.decode(bytes(args.get("input_json") or b"null"))
        except msgspec.DecodeError:
            raise InvalidInput("input must be JSON", field="input") from None
        if effects is None:  # from an init hook: at once
            await self.start(name, input, run_id)
            return run_id
        traceparent = args.get("traceparent")
        parent = traceparent if isinstance(traceparent, str) else None
        op = self.start_op(name, run_id, input, parent)
        effects.add([op], after=self.wake)
        return run_id

    def starts(self, function: str) -> bool:
        """Whether ``function`` runs a workflow: what triggers it (an event, a schedule, an
        async invoke, a queue message) starts a run instead of invoking it."""
        return function in self._configs

    def start_op(
        self, name: str, run_id: str, input: Any, traceparent: str | None = None
    ) -> StartRun:
        """The op that starts run ``run_id`` of ``name`` with ``input``, unless it exists;
        its replays join the trace of ``traceparent`` (the trigger's).

        Raises ``InvalidInput`` (a bad id, input that is not JSON) or ``PayloadTooLarge``.
        """
        self.config(name)
        check_run_id(run_id)
        try:
            encoded = msgspec.json.encode(input)
        except (TypeError, msgspec.EncodeError):
            raise InvalidInput("input must be JSON-serializable", field="input") from None
        if len(encoded) > self._settings.max_input:
            raise PayloadTooLarge(
                f"input is {len(encoded)} bytes; the limit is {self._settings.max_input}",
                field="input",
            )
        now = time.time()
        run = WorkflowRun(
            id=run_id,
            workflow=name,
            status=RunStatus.PENDING,
            input=msgspec.json.decode(encoded),
            created_at=now,
            updated_at=now,
        )
        delivery = Delivery(
            id=new_id(),
            queue=workflow_queue(name),
            payload=b"",
            invocation_id=run_id,
            enqueued_at=now,
            available_at=now,
            headers={"workflow": name},
        )
        if traceparent is not None:
            delivery.headers["traceparent"] = traceparent
        return StartRun(run, delivery)

    async def get(self, run_id: str) -> WorkflowRun:
        await self._store.commit(())
        run = await self._store.get_run(run_id)
        if run is None:
            raise NotFound(f"workflow run {run_id!r} does not exist", field="id", id=run_id)
        return run

    async def history(self, run_id: str) -> list[StepRecord]:
        await self.get(run_id)
        return await self._store.list_steps(run_id)

    async def runs(
        self,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[WorkflowRun]:
        if workflow is not None:
            self.config(workflow)
        if status is not None and status not in RunStatus.__members__.values():
            allowed = ", ".join(s.value for s in RunStatus)
            raise InvalidInput(f"status {status!r} is unknown (one of {allowed})", field="status")
        await self._store.commit(())
        return await self._store.list_runs(
            workflow=workflow, status=status, limit=limit, before=before
        )

    async def cancel(self, run_id: str) -> WorkflowRun:
        """Ask a run, and the child runs it started that have not finished, to stop: each is
        replayed at once, its next new step raises ``WorkflowCancelled`` and its
        compensations run. A finished run is left as it is."""
        run = await self.get(run_id)
        if RunStatus(run.status).finished:
            return run
        now = time.time()
        ops: list[Op] = []
        for target in [run_id, *await self._open_descendants(run_id)]:
            ops += [CancelRun(target), WakeRun(target, now)]
        await self._store.commit(ops)
        self.wake()
        return await self.get(run_id)

    async def _open_descendants(self, run_id: str) -> list[str]:
        """The unfinished runs started as children of ``run_id``, their children, and so on."""
        found: list[str] = []
        parents = [run_id]
        while parents:
            parent = parents.pop()
            for step in await self._store.list_steps(parent):
                if step.kind != StepKind.CHILD or not isinstance(step.output, str):
                    continue
                child = await self._store.get_run(step.output)
                if child is not None and not RunStatus(child.status).finished:
                    found.append(child.id)
                    parents.append(child.id)
        return found

    # --- calls from the sandbox ------------------------------------------------------------

    async def on_call(self, function: str, args: dict[str, Any], effects: Effects | None) -> None:
        """``checkpoint``: record a step now (not held: it must outlive a crash of the
        attempt), with the effects the step made so far."""
        action = args.get("action")
        if action == "start_child":
            self._check_active(function, str(args.get("run_id", "")))
            child_input = msgspec.json.decode(bytes(args.get("input_json") or b"null"))
            traceparent = args.get("traceparent")
            await self.start(
                str(args.get("workflow")),
                child_input,
                str(args.get("id")),
                traceparent if parent_of(traceparent) is not None else None,
            )
            return
        if action == "cancel_child":
            run_id = str(args.get("run_id", ""))
            self._check_active(function, run_id)
            child = str(args.get("child", ""))
            if not child.startswith(f"{run_id}."):  # only the children it started itself
                raise InvalidInput(f"{child!r} is not a child run of {run_id!r}",
                                   field="child")
            await self.cancel(child)
            return
        if action != "checkpoint":
            raise InvalidInput(f"unknown workflow call {action!r}", field="action")
        fields = dict(args.get("step") or {})
        run_id = str(fields.get("run_id", ""))
        self._check_active(function, run_id)
        output_json = fields.pop("output_json", None)
        if output_json is not None:
            fields["output"] = msgspec.json.decode(bytes(output_json))
        try:
            step = msgspec.convert(fields, StepRecord)
        except msgspec.ValidationError as exc:
            raise InvalidInput(f"bad checkpoint: {exc}", field="step") from None
        waiting = step.status == StepStatus.WAITING and step.kind == StepKind.WAIT
        if waiting:
            self._waiters.add(step)  # before the commit: an event right after it is seen
        ops: list[Op] = [PutStep(step)]
        after: list[Callable[[], None]] = []
        if effects is not None:
            held, after = effects.take()
            ops += held
        try:
            await self._store.commit(ops)
        except BaseException:
            if waiting:
                self._waiters.forget(run_id)
            raise
        for hook in after:
            hook()
        if self._settings.tracing is not None:
            step_span(self._settings.tracing, step, args.get("traceparent"))
        if step.kind == StepKind.JOIN:  # the child may have finished already
            joined = await self._join_ops([step])
            if joined:
                await self._store.commit(joined)

    def _check_active(self, function: str, run_id: str) -> None:
        if self._active.get(run_id) != function:
            raise Conflict(
                f"function {function!r} is not replaying workflow run {run_id!r}",
                field="run_id",
            )

    async def _join_ops(self, steps: Sequence[StepRecord]) -> list[Op]:
        """End the parents' waits (``wf.wait_child``) on child runs that have finished."""
        ops: list[Op] = []
        now = time.time()
        for step in steps:
            if step.kind != StepKind.JOIN or step.status != StepStatus.WAITING:
                continue
            child = await self._store.get_run(step.name.removeprefix("child:"))
            if child is None or not RunStatus(child.status).finished:
                continue
            ops += _child_outcome(step, child, now)
        return ops

    def event_ops(self, bus: str, events: Sequence[CloudEvent]) -> list[Op]:
        """Ops that end the waits these events satisfy, for the unit that publishes them."""
        if not len(self._waiters):
            return []
        return self._waiters.ops_for(bus, events, time.time())

    # --- running -------------------------------------------------------------------------

    async def run(self) -> None:
        while self._configs:
            self._wakeup.clear()
            due: float | None = None
            try:
                for name in self._configs:
                    due = _earliest(due, await self._lease(name))
            except Exception:  # leased ones come back once their lease runs out
                log.exception("leasing workflow runs failed")
            pause = POLL_S if due is None else min(POLL_S, due - time.time())
            # Yield even when something is due: a workflow at its concurrency waits for a
            # replay to end (which wakes this loop), without spinning.
            await wait_woken(self._wakeup, max(pause, 0.001))

    async def _lease(self, name: str) -> float | None:
        """Lease what ``name`` has room for; when its next run is due (None: nothing)."""
        queue = workflow_queue(name)
        free = self._settings.concurrency(name) - sum(1 for n in self._tasks.values() if n == name)
        if free > 0:
            visibility = 60.0 + self._settings.timeout_s(name)
            for delivery in await self._store.lease(queue, free, visibility):
                task = asyncio.create_task(self._advance(delivery))
                self._tasks[task] = name
                task.add_done_callback(self._done)
        else:
            return None  # woken when a replay ends
        return await self._store.next_due(queue)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._wakeup.set()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _advance(self, delivery: Delivery) -> None:
        run_id = delivery.invocation_id
        try:
            ops = await self._replay(delivery)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("workflow run %s: replaying failed", run_id)
            ops = [Retry(delivery.id, time.time() + POLL_S)]
        finally:
            self._active.pop(run_id, None)
        try:
            await self._store.commit(ops)
        except SquallError:  # the lease runs out and the run is replayed from its checkpoints
            log.exception("workflow run %s: settling the replay failed", run_id)

    async def _replay(self, delivery: Delivery) -> list[Op]:
        run_id = delivery.invocation_id
        run = await self._store.get_run(run_id)
        if run is None or RunStatus(run.status).finished or run.workflow not in self._configs:
            self._waiters.forget(run_id)
            return [Ack(delivery.id)]
        config = self._configs[run.workflow]
        now = time.time()
        steps = await self._store.list_steps(run_id)
        due = _due_timers(steps, now) + await self._join_ops(steps)
        if due:
            await self._store.commit(due)
            steps = await self._store.list_steps(run_id)
        self._waiters.forget(run_id)
        for step in steps:
            if step.status == StepStatus.WAITING and step.kind == StepKind.WAIT:
                self._waiters.add(step)
        run.status = RunStatus.RUNNING
        run.replays += 1
        run.updated_at = now
        await self._store.commit([PutRun(run)])
        payload = msgspec.json.encode(
            {
                "run_id": run_id,
                "workflow": run.workflow,
                "input": run.input,
                "history": steps,
                "cancel": run.cancel_requested,
                "step_retries": config.step_retries,
                "step_backoff_s": config.step_backoff_s,
            }
        )
        self._active[run_id] = run.workflow
        tracing = self._settings.tracing
        replay = (
            tracing.start(
                f"workflow {run.workflow}",
                parent_of(delivery.headers.get("traceparent")) or ROOT,
                kind=SpanKind.CONSUMER,
                attributes={"squall.workflow_run": run_id, "squall.replay": run.replays},
            )
            if tracing is not None
            else NO_SPAN
        )
        try:
            with use_span(replay, end_on_exit=True):
                record = await self._settings.invoke(run.workflow, payload, run.version)
        except TooManyRequests:
            run.status = RunStatus.PENDING
            return [PutRun(run), Retry(delivery.id, time.time() + BUSY_RETRY_S)]
        finally:
            self._active.pop(run_id, None)
        ops = self._settle(run, config, delivery, record)
        if RunStatus(run.status).finished:  # a parent waiting for this run resumes
            waits = [s for s in await self._store.pending_waits() if s.name == f"child:{run_id}"]
            for step in waits:
                ops += _child_outcome(step, run, time.time())
            # A join recorded after that read is woken in the unit's own transaction.
            ops.append(WakeJoins(run_id, time.time()))
        return ops

    def _settle(
        self,
        run: WorkflowRun,
        config: WorkflowConfig,
        delivery: Delivery,
        record: InvocationRecord,
    ) -> list[Op]:
        now = time.time()
        run.updated_at = now
        if run.version is None and record.version.isdigit():
            run.version = int(record.version)
        if record.status != InvocationStatus.SUCCEEDED or record.result is None:
            run.failures += 1
            run.error = record.error
            if run.failures > config.run_retries:
                log.warning("workflow run %s failed: %s", run.id, record.error)
                run.status = RunStatus.FAILED
                self._waiters.forget(run.id)
                return [PutRun(run), Ack(delivery.id)]
            run.status = RunStatus.PENDING
            delay = backoff_delay(
                run.failures, self._settings.retry_base_s, self._settings.retry_cap_s, self._rng
            )
            return [PutRun(run), Retry(delivery.id, now + delay)]
        outcome: dict[str, Any] = msgspec.json.decode(record.result)
        status = RunStatus(outcome["status"])
        run.status = status
        if status in (RunStatus.SLEEPING, RunStatus.WAITING):
            until = outcome.get("until")
            wake = now + FOREVER_S if until is None else float(until)
            self.wake()
            return [PutRun(run), SuspendRun(delivery.id, run.id, int(outcome["seq"]), wake, now)]
        run.result = outcome.get("result")
        run.error = outcome.get("error")
        run.compensation_errors = list(outcome.get("compensation_errors") or [])
        self._waiters.forget(run.id)
        return [PutRun(run), Ack(delivery.id)]


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _child_outcome(step: StepRecord, child: WorkflowRun, now: float) -> list[Op]:
    if child.status == RunStatus.COMPLETED:
        end = ResolveStep(
            step.run_id, step.seq, StepStatus.COMPLETED, output=child.result, ended_at=now
        )
    else:
        cause = child.error or {}
        error: dict[str, object] = {
            **cause,  # the child's details (a state machine's ASL error and cause)
            "type": str(cause.get("type", "WorkflowFailed")),
            "message": f"child run {child.id!r} ended {child.status}: {cause.get('message')}",
            "child": child.id,
        }
        end = ResolveStep(step.run_id, step.seq, StepStatus.FAILED, error=error, ended_at=now)
    return [end, WakeRun(step.run_id, now)]


def _due_timers(steps: Sequence[StepRecord], now: float) -> list[Op]:
    """End the sleeps and event waits whose time has come."""
    ops: list[Op] = []
    for step in steps:
        if step.wake_at is None or step.wake_at > now:
            continue
        if step.status == StepStatus.SLEEPING:
            ops.append(ResolveStep(step.run_id, step.seq, StepStatus.COMPLETED, ended_at=now))
        elif step.status == StepStatus.WAITING and step.kind == StepKind.WAIT:
            error = EventWaitTimeout(
                f"no {step.event_type!r} event matching the pattern arrived in time",
                event_type=step.event_type,
            )
            ops.append(
                ResolveStep(
                    step.run_id, step.seq, StepStatus.FAILED, error=error.to_dict(), ended_at=now
                )
            )
    return ops

