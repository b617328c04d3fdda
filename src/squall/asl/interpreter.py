"""Run a state machine inside a workflow: each state's work goes through ``wf`` so that it
is durable and a replay is deterministic.

Task → ``wf.invoke`` (no retries of its own: ``Retry`` decides); Wait and the delays
between retries → ``wf.sleep``/``wf.sleep_until``; Parallel branches and Map iterations →
child runs of the machine's ``<name>-branch`` workflow, started together (at most
``MaxConcurrency`` at a time) and joined in order; ``States.UUID``, ``States.MathRandom``
and FULL jitter → ``wf.step``. Each state, once it has exited, is recorded in the run's
history as a ``state`` step with its input and its output (or its error).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from squall.asl import choice, intrinsics, paths, payload
from squall.asl.definition import Catcher, Machine, State, Template
from squall.asl.errors import (
    BRANCH_FAILED,
    NO_CHOICE_MATCHED,
    RESULT_PATH_MATCH_FAILURE,
    RUNTIME,
    TIMEOUT,
    StatesError,
    matches,
    task_error,
)
from squall.errors import InvalidInput, SquallError, StepFailed
from squall.runtime.workflow_context import Workflow

STATE_KIND = "state"  # the history kind of an exited state


class StatesFailure(SquallError):
    """A state machine run that failed: ``details`` carry the ASL ``error`` and ``cause``."""


class _ExecutionTimedOut(Exception):
    """The machine's ``TimeoutSeconds`` passed: no Catch or Retry applies."""


def branch_workflow(machine_name: str) -> str:
    """The workflow that runs a machine's Parallel branches and Map iterations."""
    return f"{machine_name}-branch"


class Interpreter:
    def __init__(self, wf: Workflow, machine_name: str, root: Machine,
                 deadline: float | None = None) -> None:
        self.wf = wf
        self.machine_name = machine_name
        self.root = root
        self.deadline = deadline  # epoch seconds: the execution's TimeoutSeconds

    def remaining(self) -> float | None:
        """Seconds left before the execution's deadline; ``_ExecutionTimedOut`` once it
        passed. Only asked before new work: a replay of recorded work never times out."""
        if self.deadline is None or self.wf.replaying:
            return None
        left = self.deadline - time.time()
        if left <= 0:
            raise _ExecutionTimedOut(
                f"the execution ran longer than its TimeoutSeconds={self.root.timeout_s}")
        return left

    def sleep(self, seconds: float) -> None:
        left = self.remaining()
        self.wf.sleep(seconds if left is None else min(seconds, left))

    def draw(self, label: str, fn: Callable[[], Any]) -> Any:
        """A value that must not change on replay (a UUID, a random number): a step."""
        return self.wf.step(fn, name=label, retries=0)

    # --- a whole machine -----------------------------------------------------------------

    def run(self, machine: Machine, value: Any, context: dict[str, Any],
            address: list[list[Any]]) -> Any:
        """Run ``machine`` from ``StartAt`` on ``value``; its output, or ``StatesError``."""
        name: str | None = machine.start_at
        while name is not None:
            state = machine.states[name]
            self.remaining()
            entered = time.time()
            here = {**context, "State": {"Name": name, "RetryCount": 0}}
            try:
                output, name = self.state(state, value, here, address)
            except StatesError as error:
                catcher = _catcher(state.catch, error)
                self._record(state, value, None, error, entered)
                if catcher is None:
                    raise
                value = self._caught(state, catcher, value, error)
                name = catcher.next
                continue
            self._record(state, value, output, None, entered)
            value = output
        return value

    def _record(self, state: State, value: Any, output: Any, error: StatesError | None,
                entered: float) -> None:
        self.wf.record(
            STATE_KIND, state.name, input=value, output=output, started_at=entered,
            error=None if error is None else {"type": error.error, "message": error.cause},
        )

    def _caught(self, state: State, catcher: Catcher, raw: Any, error: StatesError) -> Any:
        if catcher.result_path is None:
            return raw
        try:
            return paths.put(raw, catcher.result_path, error.output())
        except paths.PathError as exc:
            raise StatesError(RESULT_PATH_MATCH_FAILURE, str(exc)) from None

    # --- one state -------------------------------------------------------------------------

    def state(self, state: State, raw: Any, context: dict[str, Any],
              address: list[list[Any]]) -> tuple[Any, str | None]:
        """``(output, next state or None at the end)``."""
        if state.type == "Fail":
            raise StatesError(self._fail_field(state, "error", raw, context),
                              self._fail_field(state, "cause", raw, context))
        effective = _select(state.input_path, raw, context, "InputPath")
        if state.type == "Choice":
            return _select(state.output_path, effective, context, "OutputPath"), _chosen(
                state, effective, context)
        if state.type == "Wait":
            self._wait(state, effective, context)
            result: Any = None
        elif state.type == "Succeed":
            return _select(state.output_path, effective, context, "OutputPath"), None
        if state.type in ("Task", "Pass", "Parallel"):
            effective = self._template(state.parameters, effective, context)
        if state.type == "Pass":
            result = effective if state.result is None else state.result.value
        elif state.type != "Wait":
            result = self._retrying(state, effective, context, address)
            result = self._template(state.result_selector, result, context)
        if state.type == "Wait":
            combined = effective
        elif state.result_path is None:
            combined = raw
        else:
            try:
                combined = paths.put(raw, state.result_path, result)
            except paths.PathError as exc:
                raise StatesError(RESULT_PATH_MATCH_FAILURE, str(exc)) from None
        output = _select(state.output_path, combined, context, "OutputPath")
        return output, None if state.end else state.next

    def _template(self, template: Template | None, value: Any, context: Any) -> Any:
        if template is None:
            return value
        return payload.apply(template.value, value, context, self.draw)

    def _fail_field(self, state: State, key: str, raw: Any, context: Any) -> str:
        literal: str | None = getattr(state, key)
        source = getattr(state, f"{key}_path")
        if source is None:
            return literal or ""
        try:
            if isinstance(source, intrinsics.Call):
                value = intrinsics.evaluate(source, raw, context, self.draw)
            else:
                value = source.find(raw, context)
        except paths.PathError as exc:
            raise StatesError(RUNTIME, f"{key.capitalize()}Path: {exc}") from None
        return value if isinstance(value, str) else str(value)

    def _wait(self, state: State, value: Any, context: Any) -> None:
        if state.seconds is not None:
            seconds: Any = state.seconds
        elif state.seconds_path is not None:
            seconds = _select(state.seconds_path, value, context, "SecondsPath")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise StatesError(RUNTIME, f"SecondsPath gave {seconds!r}, not seconds >= 0")
        else:
            stamp = state.timestamp if state.timestamp is not None else _select(
                state.timestamp_path, value, context, "TimestampPath")
            if not choice.is_timestamp(stamp):
                raise StatesError(RUNTIME, f"TimestampPath gave {stamp!r}, not a timestamp")
            at = choice.timestamp(stamp)
            left = self.remaining()
            self.wf.sleep_until(at if left is None else min(at, time.time() + left))
            return
        if seconds > 0:
            self.sleep(float(seconds))

    # --- work that can be retried ------------------------------------------------------------

    def _retrying(self, state: State, value: Any, context: dict[str, Any],
                  address: list[list[Any]]) -> Any:
        used = [0] * len(state.retry)
        while True:
            try:
                return self._work(state, value, context, address)
            except StatesError as error:
                index = next((i for i, r in enumerate(state.retry)
                              if matches(r.error_equals, error.error)), None)
                if index is None or used[index] >= state.retry[index].max_attempts:
                    raise
                retrier = state.retry[index]
                fraction = self.draw("jitter", random.random) if retrier.jitter == "FULL" else 1
                delay = retrier.delay(used[index], float(fraction))
                used[index] += 1
                context["State"]["RetryCount"] = sum(used)
                if delay > 0:
                    self.sleep(delay)

    def _work(self, state: State, value: Any, context: dict[str, Any],
              address: list[list[Any]]) -> Any:
        if state.type == "Task":
            assert state.resource is not None
            timeout = state.timeout_s
            left = self.remaining()
            if left is not None:
                timeout = left if timeout is None else min(timeout, left)
            try:
                return self.wf.invoke(state.resource, value, retries=0, timeout_s=timeout)
            except StepFailed as exc:
                raise task_error(dict(exc.details.get("cause") or {})) from None
        if state.type == "Parallel":
            return self._children(state, [
                ([*address, [state.name, i]], value, context)
                for i in range(len(state.branches))
            ], 0)
        items = _select(state.items_path, value, context, "ItemsPath")
        if not isinstance(items, list):
            raise StatesError(RUNTIME, f"ItemsPath {state.items_path.text!r} is not an array")
        runs = []
        for index, item in enumerate(items):
            here = {**context, "Map": {"Item": {"Index": index, "Value": item}}}
            # ItemSelector reads the Map state's input; the item is $$.Map.Item.Value
            selected = self._template(state.item_selector, value, here) if (
                state.item_selector is not None) else item
            runs.append(([*address, [state.name, 0]], selected, here))
        return self._children(state, runs, state.max_concurrency)

    def _children(self, state: State, runs: list[tuple[list[list[Any]], Any, Any]],
                  limit: int) -> list[Any]:
        """Start a child run per branch or item, at most ``limit`` at once (0: all), and
        join them in order."""
        results: list[Any] = [None] * len(runs)
        pending: deque[tuple[int, str]] = deque()
        workflow = branch_workflow(self.machine_name)
        try:
            for index, (address, value, context) in enumerate(runs):
                if limit and len(pending) >= limit:
                    done, child = pending.popleft()
                    results[done] = self._join(child)
                child_input = {"address": address, "input": value,
                               "context": {k: v for k, v in context.items() if k != "State"}}
                pending.append((index, self.wf.start_child(workflow, child_input)))
            while pending:
                done, child = pending.popleft()
                results[done] = self._join(child)
        except StatesError:
            for _, child in pending:  # one failed: the others stop
                self.wf.cancel_child(child)
            raise
        return results

    def _join(self, child: str) -> Any:
        try:
            return self.wf.wait_child(child)
        except StepFailed as exc:
            cause = dict(exc.details.get("cause") or {})
            if cause.get("type") == "StatesFailure":
                raise task_error(cause) from None
            raise StatesError(BRANCH_FAILED, str(cause.get("message", ""))) from None


def _catcher(catchers: tuple[Catcher, ...], error: StatesError) -> Catcher | None:
    return next((c for c in catchers if matches(c.error_equals, error.error)), None)


def _chosen(state: State, value: Any, context: Any) -> str:
    for branch in state.choices:
        if choice.evaluate(branch.rule, value, context):
            return branch.next
    if state.default is None:
        raise StatesError(NO_CHOICE_MATCHED, f"no choice rule of {state.name!r} matched")
    return state.default


def _select(path: paths.Path | None, value: Any, context: Any, field: str) -> Any:
    if path is None:
        return {}
    try:
        return path.find(value, context)
    except paths.PathError as exc:
        raise StatesError(RUNTIME, f"{field}: {exc}") from None


def run_machine(wf: Workflow, machine_name: str, root: Machine, value: Any) -> Any:
    """The body of a state machine's workflow: its output, or ``StatesFailure``."""
    context = {
        "Execution": {"Id": wf.run_id, "Name": wf.run_id, "Input": value},
        "StateMachine": {"Id": machine_name, "Name": machine_name},
    }
    deadline = None
    if root.timeout_s is not None:
        deadline = float(wf.step(time.time, name="execution-started", retries=0))
        deadline += root.timeout_s
    interpreter = Interpreter(wf, machine_name, root, deadline)
    return _finish(lambda: interpreter.run(root, value, context, []))


def run_branch(wf: Workflow, machine_name: str, root: Machine, request: Any) -> Any:
    """The body of ``<name>-branch``: one Parallel branch or Map iteration."""
    try:
        address = request["address"]
        machine = root.branch(address)
        context = dict(request.get("context") or {})
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise InvalidInput(
            f"{branch_workflow(machine_name)!r} runs the Parallel branches and Map"
            f" iterations of state machine {machine_name!r}: start {machine_name!r} instead",
            field="input",
        ) from None
    context.setdefault("StateMachine", {"Id": machine_name, "Name": machine_name})
    return _finish(lambda: Interpreter(wf, machine_name, root).run(
        machine, request.get("input"), context, address))


def _finish(body: Callable[[], Any]) -> Any:
    try:
        return body()
    except StatesError as error:
        raise StatesFailure(str(error), error=error.error, cause=error.cause) from None
    except _ExecutionTimedOut as timed_out:
        raise StatesFailure(f"{TIMEOUT}: {timed_out}", error=TIMEOUT,
                            cause=str(timed_out)) from None
