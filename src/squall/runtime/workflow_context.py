"""The ``wf`` object a workflow receives: steps, timers, event waits and compensations.

It lives in the sandbox. A run is replayed from the start on every invocation: a step whose
position is in the run's history returns (or raises) what was recorded there without running
again; a new step runs here, is retried per its policy, and is checkpointed through the
platform before the workflow goes on. Sleeping and waiting end the invocation (the workflow
is *suspended*); the platform resumes the run when the timer fires or the event arrives.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import signal
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import msgspec

from squall.errors import (
    EventWaitTimeout,
    InvalidInput,
    NonDeterministicWorkflow,
    ResultNotSerializable,
    SquallError,
    StepFailed,
    WorkflowCancelled,
)
from squall.runtime.context import Context

BACKOFF_CAP_S = 60.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Suspend(BaseException):
    """Ends the invocation: the run sleeps or waits (user code cannot catch it by accident)."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(outcome.get("status"))
        self.outcome = outcome


class _StepTimeout(Exception):
    pass


def parse_duration(value: str | float | timedelta, field: str = "duration") -> float:
    """``"2h"``, ``"1h30m"``, ``"500ms"``, seconds or a timedelta, as seconds."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise InvalidInput(f"{field}={value!r} is not a duration", field=field)
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise InvalidInput(
                f"{field}={value!r} is not a duration (e.g. '30s', '2h', '1h30m', '7d')",
                field=field,
            )
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise InvalidInput(f"{field}={value!r} is not a duration", field=field)
    if seconds < 0:
        raise InvalidInput(f"{field}={value!r} is negative", field=field)
    return seconds


def _error_of(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, SquallError):
        return exc.to_dict()
    tb = exc.__traceback__.tb_next if exc.__traceback__ else None
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, tb)),
    }


def _encode(value: Any, what: str) -> bytes:
    try:
        return msgspec.json.encode(value)
    except (TypeError, msgspec.EncodeError):
        raise ResultNotSerializable(
            f"{what} returned a value of type {type(value).__name__} that is not"
            " JSON-serializable (return dicts, lists, strings, numbers, bools or None)",
            value_type=type(value).__name__,
        ) from None


class Workflow:
    """What a workflow function gets as ``wf``. ``wf.ctx`` is the invocation's context."""

    def __init__(self, ctx: Context, run: dict[str, Any]) -> None:
        self.ctx = ctx
        self.run_id: str = run["run_id"]
        self.name: str = run["workflow"]
        self._history: dict[int, dict[str, Any]] = {s["seq"]: s for s in run["history"]}
        self._cancel = bool(run.get("cancel"))
        self.cancel_requested = self._cancel  # kept while compensations run
        self._retries = int(run.get("step_retries", 3))
        self._backoff = float(run.get("step_backoff_s", 1.0))
        self._seq = 0
        self._compensations: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self.nondeterministic: NonDeterministicWorkflow | None = None

    # --- positions and history ---------------------------------------------------------

    def _position(self, kind: str, name: str) -> tuple[int, dict[str, Any] | None]:
        seq = self._seq
        self._seq += 1
        recorded = self._history.get(seq)
        if recorded is None:
            self._check_cancel()
            return seq, None
        if (recorded["kind"], recorded["name"]) != (kind, name):
            error = NonDeterministicWorkflow(
                f"workflow {self.name!r} run {self.run_id!r} is not deterministic: step"
                f" #{seq} is {recorded['kind']} {recorded['name']!r} in its history, but the"
                f" replay asked for {kind} {name!r}",
                seq=seq,
                recorded=f"{recorded['kind']}:{recorded['name']}",
                replayed=f"{kind}:{name}",
            )
            self.nondeterministic = error
            raise error
        return seq, recorded

    def _check_cancel(self) -> None:
        if self._cancel:
            raise WorkflowCancelled(f"workflow run {self.run_id!r} was cancelled")

    @property
    def replaying(self) -> bool:
        """Whether the next position is one the history holds (so what it returns is what
        was recorded, whatever the clock says now)."""
        return self._seq <= max(self._history, default=-1)

    def unreplayed(self) -> list[int]:
        """Recorded positions this replay has not reached (it ended early)."""
        return sorted(seq for seq in self._history if seq >= self._seq)

    def _checkpoint(self, **step: Any) -> None:
        self.ctx._link.call(
            "workflow",
            self.ctx._traced(
                {"action": "checkpoint", "step": {"run_id": self.run_id, **step}}
            ),
        )

    @staticmethod
    def _replayed(seq: int, recorded: dict[str, Any]) -> Any:
        if recorded["status"] == "failed":
            error = recorded.get("error") or {}
            raise StepFailed(
                f"step {recorded['name']!r} (#{seq}) failed after {recorded['attempts']}"
                f" attempt(s): {error.get('type')}: {error.get('message')}",
                step=recorded["name"],
                seq=seq,
                attempts=recorded["attempts"],
                cause=error,
            )
        return recorded.get("output")

    # --- steps -------------------------------------------------------------------------

    def step(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        retries: int | None = None,
        timeout_s: float | None = None,
        backoff_s: float | None = None,
    ) -> Any:
        """Run ``fn(*args)`` once per run, checkpointing its (JSON) result; retried with
        exponential backoff; a step out of retries raises ``StepFailed``."""
        label = str(name or getattr(fn, "__name__", "step"))
        seq, recorded = self._position("step", label)
        if recorded is not None:
            return self._replayed(seq, recorded)
        return self._execute(seq, "step", label, lambda: fn(*args), args, retries, timeout_s,
                             backoff_s)

    def invoke(
        self,
        function: str,
        payload: Any = None,
        *,
        retries: int | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Invoke a platform function synchronously as a step (``invoke:<function>`` must be
        in the workflow's permissions); its result is checkpointed. ``timeout_s`` bounds the
        wait (the attempt fails with ``Timeout``; the invocation itself runs on)."""
        seq, recorded = self._position("invoke", function)
        if recorded is not None:
            return self._replayed(seq, recorded)
        return self._execute(
            seq, "invoke", function,
            lambda: self.ctx.invoke(function, payload, timeout_s=timeout_s), payload,
            retries, None, None,
        )

    def record(
        self,
        kind: str,
        name: str,
        *,
        input: Any = None,
        output: Any = None,
        error: dict[str, Any] | None = None,
        started_at: float | None = None,
    ) -> None:
        """Note in the history that something happened (a state machine's state exited,
        with its input and output or error) without running anything; a replay passes it."""
        seq, recorded = self._position(kind, name)
        if recorded is not None:
            return
        now = time.time()
        self._checkpoint(
            seq=seq, name=name, kind=kind, status="failed" if error else "completed",
            input=msgspec.json.decode(_encode(input, f"the input of {name!r}")),
            output_json=_encode(output, repr(name)), error=error, attempts=1,
            started_at=now if started_at is None else started_at, ended_at=now,
        )

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        *,
        max_concurrency: int = 8,
        retries: int | None = None,
    ) -> list[Any]:
        """``[fn(item) for item in items]``, each item a checkpointed step, run concurrently
        on up to ``max_concurrency`` threads of the sandbox; results in item order."""
        label = getattr(fn, "__name__", "step")
        return self._fan_out(
            [("step", label, _bind(fn, (item,)), [item]) for item in items],
            max_concurrency,
            retries,
        )

    def gather(
        self, *calls: tuple[Any, ...], max_concurrency: int = 8, retries: int | None = None
    ) -> list[Any]:
        """Run several steps at once and return their results in order: each call is
        ``(fn, *args)``, a step, or ``("function-name", payload)``, an invoke of a platform
        function. A failed one raises its ``StepFailed`` once all have ended."""
        specs: list[tuple[str, str, Callable[[], Any], Any]] = []
        for index, call in enumerate(calls):
            if not isinstance(call, tuple) or not call:
                raise InvalidInput(
                    f"calls[{index}] must be a tuple (fn, *args) or ('function', payload),"
                    f" not {call!r}",
                    field=f"calls[{index}]",
                )
            target, *args = call
            if isinstance(target, str):
                if len(args) > 1:
                    raise InvalidInput(
                        f"calls[{index}]: an invoke takes one payload, not {len(args)}",
                        field=f"calls[{index}]",
                    )
                payload = args[0] if args else None
                specs.append(("invoke", target, self._invoker(target, payload), payload))
            elif callable(target):
                label = getattr(target, "__name__", "step")
                specs.append(("step", label, _bind(target, tuple(args)), list(args)))
            else:
                raise InvalidInput(
                    f"calls[{index}][0] must be a function or a function name, not {target!r}",
                    field=f"calls[{index}]",
                )
        return self._fan_out(specs, max_concurrency, retries)

    def _invoker(self, function: str, payload: Any) -> Callable[[], Any]:
        return lambda: self.ctx.invoke(function, payload)

    def _fan_out(
        self,
        specs: list[tuple[str, str, Callable[[], Any], Any]],
        max_concurrency: int,
        retries: int | None,
    ) -> list[Any]:
        """Positions are taken in order before anything runs, so a replay meets them in
        the same order whichever finished first."""
        if max_concurrency < 1:
            raise InvalidInput("max_concurrency must be at least 1", field="max_concurrency")
        positions = [self._position(kind, label) for kind, label, _, _ in specs]
        todo = [i for i, (_, recorded) in enumerate(positions) if recorded is None]
        results: dict[int, Any] = {}
        failures: dict[int, BaseException] = {}

        def one(i: int) -> None:
            kind, label, body, given = specs[i]
            try:
                results[i] = self._execute(
                    positions[i][0], kind, label, body, given, retries, None, None
                )
            except BaseException as exc:
                failures[i] = exc

        with ThreadPoolExecutor(max_workers=min(max_concurrency, max(len(todo), 1))) as pool:
            list(pool.map(one, todo))
        for i in sorted(failures):
            raise failures[i]
        out: list[Any] = []
        for i, (seq, recorded) in enumerate(positions):
            out.append(results[i] if recorded is None else self._replayed(seq, recorded))
        return out

    def _execute(
        self,
        seq: int,
        kind: str,
        label: str,
        body: Callable[[], Any],
        given: Any,
        retries: int | None,
        timeout_s: float | None,
        backoff_s: float | None,
    ) -> Any:
        allowed = self._retries if retries is None else retries
        base = self._backoff if backoff_s is None else backoff_s
        try:
            step_input: Any = msgspec.json.decode(msgspec.json.encode(given))
        except (TypeError, msgspec.EncodeError):
            step_input = repr(given)
        started = time.time()
        attempts = 0
        while True:
            attempts += 1
            try:
                output = _timed(lambda: _awaited(body()), timeout_s)
                encoded = _encode(output, f"step {label!r}")
            except ResultNotSerializable as exc:  # retrying cannot fix it
                error = exc.to_dict()
                break
            except Exception as exc:
                error = _error_of(exc)
                if attempts <= allowed:
                    time.sleep(min(base * 2 ** (attempts - 1), BACKOFF_CAP_S))
                    continue
                break
            self._checkpoint(
                seq=seq, name=label, kind=kind, status="completed", input=step_input,
                output_json=encoded, attempts=attempts, started_at=started,
                ended_at=time.time(),
            )
            return msgspec.json.decode(encoded)
        self._checkpoint(
            seq=seq, name=label, kind=kind, status="failed", input=step_input, error=error,
            attempts=attempts, started_at=started, ended_at=time.time(),
        )
        return self._replayed(seq, {"name": label, "status": "failed", "attempts": attempts,
                                    "error": error})

    # --- timers and events ---------------------------------------------------------------

    def sleep(self, duration: str | float | timedelta) -> None:
        """Suspend the run for ``duration`` ("2h", seconds, a timedelta), durably."""
        seconds = parse_duration(duration)
        self._sleep(time.time() + seconds, "sleep")

    def sleep_until(self, when: datetime | float) -> None:
        """Suspend the run until ``when`` (an aware datetime or epoch seconds)."""
        if isinstance(when, datetime):
            if when.tzinfo is None:
                raise InvalidInput(f"{when!r} has no time zone: pass an aware datetime",
                                   field="when")
            at = when.timestamp()
        else:
            at = float(when)
        self._sleep(at, "sleep_until")

    def _sleep(self, at: float, label: str) -> None:
        seq, recorded = self._position("sleep", label)
        if recorded is None:
            self._checkpoint(
                seq=seq, name=label, kind="sleep", status="sleeping", started_at=time.time(),
                wake_at=at,
            )
            raise Suspend({"status": "sleeping", "seq": seq, "until": at})
        if recorded["status"] == "sleeping":
            self._check_cancel()
            raise Suspend({"status": "sleeping", "seq": seq, "until": recorded["wake_at"]})

    def wait_for_event(
        self,
        event_type: str,
        *,
        pattern: dict[str, Any] | None = None,
        timeout: str | float | timedelta | None = None,
        bus: str = "default",
    ) -> dict[str, Any]:
        """Suspend until an event of ``event_type`` matching ``pattern`` (an event pattern,
        as rules use) is published on ``bus``; returns the event (CloudEvents JSON).
        Raises ``EventWaitTimeout`` when ``timeout`` passes first."""
        seq, recorded = self._position("wait", event_type)
        if recorded is None:
            until = None if timeout is None else time.time() + parse_duration(timeout, "timeout")
            self._checkpoint(
                seq=seq, name=event_type, kind="wait", status="waiting",
                started_at=time.time(), wake_at=until, event_type=event_type,
                pattern=pattern, bus=bus,
            )
            raise Suspend({"status": "waiting", "seq": seq, "until": until})
        if recorded["status"] == "waiting":
            self._check_cancel()
            raise Suspend({"status": "waiting", "seq": seq, "until": recorded.get("wake_at")})
        if recorded["status"] == "failed":
            error = recorded.get("error") or {}
            raise EventWaitTimeout(
                str(error.get("message") or f"no {event_type!r} event arrived in time"),
                seq=seq,
                event_type=event_type,
            )
        event: dict[str, Any] = recorded["output"]
        return event

    # --- child workflows -------------------------------------------------------------------

    def start_child(
        self, workflow: str | Callable[..., Any], input: Any = None, *, id: str | None = None
    ) -> str:
        """Start a run of another workflow (by name, or its function) as a step; returns the
        child's run id (``id``, by default derived from this run and the step's position)."""
        name = workflow if isinstance(workflow, str) else workflow.__name__.replace("_", "-")
        seq, recorded = self._position("child", name)
        if recorded is not None:
            return str(self._replayed(seq, recorded))
        child_id = id or f"{self.run_id}.{seq}"
        encoded = _encode(input, f"the input of child workflow {name!r}")
        started = time.time()
        self.ctx._link.call(
            "workflow",
            self.ctx._traced(
                {"action": "start_child", "run_id": self.run_id, "workflow": name,
                 "input_json": encoded, "id": child_id},
            ),
        )
        self._checkpoint(
            seq=seq, name=name, kind="child", status="completed",
            input=msgspec.json.decode(encoded), output_json=_encode(child_id, "start_child"),
            attempts=1, started_at=started, ended_at=time.time(),
        )
        return child_id

    def wait_child(self, child_id: str) -> Any:
        """Suspend until child run ``child_id`` finishes; its result, or ``StepFailed`` when
        it did not complete."""
        label = f"child:{child_id}"
        seq, recorded = self._position("join", label)
        if recorded is None:
            self._checkpoint(seq=seq, name=label, kind="join", status="waiting",
                             started_at=time.time())
            raise Suspend({"status": "waiting", "seq": seq, "until": None})
        if recorded["status"] == "waiting":
            self._check_cancel()
            raise Suspend({"status": "waiting", "seq": seq, "until": None})
        return self._replayed(seq, recorded)

    def cancel_child(self, child_id: str) -> None:
        """Ask child run ``child_id`` (started by this run, with its default id) to stop,
        as ``squall workflows cancel`` does; a finished child is left as it is."""
        self.ctx._link.call(
            "workflow", {"action": "cancel_child", "run_id": self.run_id, "child": child_id}
        )

    def child(
        self, workflow: str | Callable[..., Any], input: Any = None, *, id: str | None = None
    ) -> Any:
        """``wait_child(start_child(...))``: run a child workflow and return its result."""
        return self.wait_child(self.start_child(workflow, input, id=id))

    # --- sagas ---------------------------------------------------------------------------

    def compensate(self, fn: Callable[..., Any], *args: Any) -> None:
        """Register ``fn(*args)`` to undo what the workflow did so far: when the workflow
        fails or is cancelled, compensations run in reverse order, each a retried step."""
        self._compensations.append((fn, args))

    def run_compensations(self) -> list[dict[str, Any]]:
        """Run the registered compensations, last first; the errors of those that failed."""
        self._cancel = False  # a cancelled run still compensates
        failed: list[dict[str, Any]] = []
        for fn, args in reversed(self._compensations):
            label = getattr(fn, "__name__", "compensation")
            seq, recorded = self._position("compensate", label)
            try:
                if recorded is not None:
                    self._replayed(seq, recorded)
                else:
                    self._execute(seq, "compensate", label, _bind(fn, args), args, None, None,
                                  None)
            except StepFailed as exc:
                failed.append({"step": label, "seq": seq, **exc.to_dict()})
        return failed


def _awaited(value: Any) -> Any:
    """An ``async def`` workflow or step runs to its end on an event loop of its own: the
    ``wf`` calls inside block, as they do in a ``def`` workflow (each ends the replay or
    returns a checkpoint; nothing is gained by interleaving them on one loop)."""
    if not inspect.isawaitable(value):
        return value
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_wait(value))
    # A coroutine step inside an async workflow: its loop is busy running the workflow.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _wait(value)).result()


async def _wait(value: Awaitable[Any]) -> Any:
    return await value


def _bind(fn: Callable[..., Any], args: tuple[Any, ...]) -> Callable[[], Any]:
    return lambda: fn(*args)


def _timed(body: Callable[[], Any], timeout_s: float | None) -> Any:
    """Run ``body``, interrupted after ``timeout_s`` when on the main thread (``map``'s
    items on pool threads are bounded by the invocation's own timeout only)."""
    if timeout_s is None or threading.current_thread() is not threading.main_thread():
        return body()

    def expire(signum: int, frame: object) -> None:
        raise _StepTimeout(f"the step took longer than its timeout_s={timeout_s}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return body()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_workflow(fn: Callable[..., Any], run: Any, ctx: Context) -> dict[str, Any]:
    """The handler of a workflow's function: replay the run, report how the invocation
    ended (``completed``, ``failed``, ``compensated``, ``compensation_failed``,
    ``cancelled``, or suspended: ``sleeping``/``waiting`` with the step and time)."""
    if not isinstance(run, dict) or "run_id" not in run:
        raise InvalidInput(
            "a workflow runs through Platform.start_workflow or POST"
            " /api/v1/workflows/{name}/runs, not by invoking its function",
            field="payload",
        )
    wf = Workflow(ctx, run)
    try:
        result = _awaited(fn(wf, run.get("input")))
        if wf.unreplayed():
            seq = wf.unreplayed()[0]
            recorded = run["history"][[s["seq"] for s in run["history"]].index(seq)]
            raise NonDeterministicWorkflow(
                f"workflow {wf.name!r} run {wf.run_id!r} is not deterministic: it returned"
                f" before step #{seq} ({recorded['kind']} {recorded['name']!r}) of its history",
                seq=seq,
                recorded=f"{recorded['kind']}:{recorded['name']}",
                replayed="return",
            )
        _encode(result, f"workflow {wf.name!r}")
        return {"status": "completed", "result": result}
    except Suspend as suspend:
        return suspend.outcome
    except Exception as exc:
        error = (wf.nondeterministic or exc)
        if wf.nondeterministic is not None or isinstance(exc, NonDeterministicWorkflow):
            return {"status": "failed", "error": _error_of(error)}
        # A cancelled run ends cancelled even when what stopped it was a child it waited on
        # failing because the same cancel reached the child first.
        cancelled = isinstance(exc, WorkflowCancelled) or wf.cancel_requested
        try:
            failures = wf.run_compensations()
        except Suspend as suspend:  # pragma: no cover - compensations do not suspend
            return suspend.outcome
        except NonDeterministicWorkflow as nondeterministic:
            return {"status": "failed", "error": nondeterministic.to_dict()}
        outcome: dict[str, Any] = {"error": _error_of(exc)}
        if failures:
            outcome.update(status="compensation_failed", compensation_errors=failures)
        elif cancelled:
            outcome["status"] = "cancelled"
        elif wf._compensations:
            outcome["status"] = "compensated"
        else:
            outcome["status"] = "failed"
        return outcome
