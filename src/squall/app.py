"""Decorators that record what an app declares. Nothing here runs user code."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from squall.asl.definition import Machine, State
from squall.engine.router.patterns import validate_pattern
from squall.engine.schedules.expressions import parse as parse_expression
from squall.errors import ConfigError, InvalidInput
from squall.model.alerts import AlertConfig, window_seconds
from squall.model.buckets import BucketConfig, event_types, object_pattern
from squall.model.budgets import BudgetConfig
from squall.model.config import FunctionConfig, Manifest
from squall.model.deploys import check_alias_name
from squall.model.event_store import ProjectionConfig
from squall.model.http import AppSettings, CorsConfig, JwtConfig, RateLimit, RouteConfig
from squall.model.queues import QUEUE_NAME_RE, QueueConfig, QueueTrigger
from squall.model.requirements import FILE as REQUIREMENTS_FILE
from squall.model.requirements import check as check_requirements
from squall.model.requirements import normalize as normalize_requirements
from squall.model.requirements import read_file as read_requirements
from squall.model.rules import DEFAULT_BUS, RuleConfig, app_rule, rule_pattern
from squall.model.schedules import ScheduleConfig
from squall.model.stages import StageConfig, check_stage_name, check_stages
from squall.model.streams import DEFAULT_RETENTION_S, StreamConfig, StreamTrigger
from squall.model.tables import (
    IMAGES,
    ChangeTrigger,
    TableConfig,
    stream_trigger,
    table_config,
)
from squall.model.targets import FunctionTarget, Target
from squall.model.workflows import WorkflowConfig

Handler = Callable[..., Any]
F = TypeVar("F", bound=Handler)


@dataclass(frozen=True)
class FunctionDef:
    config: FunctionConfig
    handler: Handler
    init: Callable[..., Any] | None


class App:
    """An app: a named set of functions and the triggers that drive them.

    >>> app = App("shop")
    >>> @app.function(memory_mb=256)
    ... def hello(event, ctx):
    ...     return {"hello": event.get("name", "world")}
    """

    def __init__(
        self,
        name: str,
        *,
        debug: bool = False,
        cors: CorsConfig | None = None,
        jwt: JwtConfig | None = None,
        key_rate_limit: RateLimit | None = None,
        requirements: Sequence[str] | str = (),
        stages: Mapping[str, StageConfig | Mapping[str, Any]] | None = None,
    ) -> None:
        """``requirements`` (a list, or a requirements file relative to the app's file) add
        to ``requirements.txt`` beside the app file; see docs/concepts.md, Dependencies.
        ``stages`` maps stage names to their settings (``{"prod": {"env": {...}}}``), chosen
        with ``squall up --stage``; see docs/deploys.md, Stages."""
        self.name = name
        self.stages = {
            check_stage_name(stage, f"stages.{stage}"): _stage(stage, settings)
            for stage, settings in (stages or {}).items()
        }
        check_stages(self.stages)
        self.requirements = requirements if isinstance(requirements, str) else (
            check_requirements(requirements)
        )
        self.root: Path | None = None  # the app file's directory, set by the loader
        self.functions: dict[str, FunctionDef] = {}
        self.routes: list[RouteConfig] = []
        self.rules: list[RuleConfig] = []
        self.streams: list[StreamConfig] = []
        self.stream_triggers: list[StreamTrigger] = []
        self.schedules: list[ScheduleConfig] = []
        self.queues: dict[str, QueueConfig] = {}
        self.queue_triggers: list[QueueTrigger] = []
        self.buckets: dict[str, BucketConfig] = {}
        self.tables: list[TableConfig] = []
        self.change_triggers: list[ChangeTrigger] = []
        self.budgets: list[BudgetConfig] = []
        self.alerts: list[AlertConfig] = []
        self.workflows: list[WorkflowConfig] = []
        self._workflow_handlers: dict[str, Any] = {}  # name -> the workflow's own handler
        self.state_machines: dict[str, Machine] = {}
        self.projections: list[ProjectionConfig] = []
        self.settings = AppSettings(debug=debug, cors=cors, jwt=jwt, key_rate_limit=key_rate_limit)

    def function(
        self,
        name: str | None = None,
        *,
        memory_mb: int = 128,
        timeout_s: int = 30,
        concurrency: int = 10,
        min_instances: int = 0,
        keep_alive_s: int = 300,
        retries: int = 2,
        max_event_age_s: int = 21600,
        on_success: str | None = None,
        on_failure: str | None = None,
        dead_letter: bool = True,
        env: dict[str, str] | None = None,
        secrets: list[str] | tuple[str, ...] = (),
        permissions: list[str] | tuple[str, ...] = (),
        init: Callable[..., Any] | None = None,
        description: str = "",
        requirements: Sequence[str] = (),
    ) -> Callable[[F], F]:
        """Declare a function. ``init(ctx)`` runs once per sandbox; its result is ``ctx.state``.

        ``requirements`` are installed, with the app's, in the environment its sandboxes run
        in; the module must import without them (import them in the handler or ``init``).
        """

        def register(handler: F) -> F:
            fn_name = name or handler.__name__.replace("_", "-")
            if not callable(handler):
                raise ConfigError(f"function {fn_name!r}: handler is not callable", field="handler")
            if init is not None and not callable(init):
                raise ConfigError(
                    f"function {fn_name!r}: init={init!r} is not callable", field="init"
                )
            config = FunctionConfig(
                name=fn_name,
                memory_mb=memory_mb,
                timeout_s=timeout_s,
                concurrency=concurrency,
                min_instances=min_instances,
                keep_alive_s=keep_alive_s,
                retries=retries,
                max_event_age_s=max_event_age_s,
                on_success=on_success,
                on_failure=on_failure,
                dead_letter=dead_letter,
                env=dict(env or {}),
                secrets=tuple(secrets),
                permissions=tuple(permissions),
                requirements=check_requirements(requirements, function=fn_name),
                has_init=init is not None,
                is_async=inspect.iscoroutinefunction(handler),
                description=description or (inspect.getdoc(handler) or "").split("\n")[0],
            )
            config.validate()
            if fn_name in self.functions:
                raise ConfigError(f"function {fn_name!r} is declared twice", field="name")
            self.functions[fn_name] = FunctionDef(config, handler, init)
            return handler

        return register

    def http(
        self,
        route: str,
        *,
        auth: str = "none",
        timeout_s: float = 29.0,
        scopes: list[str] | tuple[str, ...] = (),
        rate_limit: RateLimit | None = None,
        alias: str | None = None,
        **function_options: Any,
    ) -> Callable[[F], F]:
        """Bind ``"METHOD /path/{param}"`` to a function; stack it for several routes.

        The handler gets a ``squall.Request`` and returns a ``squall.Response`` or a
        JSON-able value. ``alias`` serves the route with that alias's version (``beta``);
        without it the ``live`` alias, else the newest version. Other keyword arguments
        configure the function, as ``@app.function`` does, the first time it is declared.
        """
        _checked_alias(alias)

        def register(handler: F) -> F:
            name = function_options.get("name") or handler.__name__.replace("_", "-")
            self._declare(name, handler, function_options)
            self.routes.append(
                RouteConfig.parse(
                    route,
                    name,
                    auth=auth,
                    timeout_s=float(timeout_s),
                    scopes=tuple(scopes),
                    rate_limit=rate_limit,
                    alias=alias,
                )
            )
            return handler

        return register

    def on(
        self,
        event_type: str | None = None,
        *,
        pattern: dict[str, Any] | None = None,
        bus: str = DEFAULT_BUS,
        rule: str | None = None,
        alias: str | None = None,
        **function_options: Any,
    ) -> Callable[[F], F]:
        """Run the function for every event on ``bus`` whose type is ``event_type`` and
        that matches ``pattern`` (EventBridge pattern language); stack it for several rules.
        ``alias`` runs the events on that alias's version (see ``http``).

        The handler gets the event as a CloudEvents JSON dict and runs as an async
        invocation: retried, dead-lettered, at least once.
        """
        full = _checked_pattern(event_type or "pattern", rule_pattern(event_type, pattern))
        _checked_alias(alias)

        def register(handler: F) -> F:
            name = function_options.get("name") or handler.__name__.replace("_", "-")
            self._declare(name, handler, function_options)
            count = len([r for r in self.rules if name in r.functions()])
            target = FunctionTarget(name) if alias is None else FunctionTarget(name, alias=alias)
            config = app_rule(rule or f"{name}-{count}", bus=bus, pattern=full, targets=(target,))
            self.rules.append(config)
            return handler

        return register

    def rule(
        self,
        name: str,
        *,
        targets: list[Target] | tuple[Target, ...],
        event_type: str | None = None,
        pattern: dict[str, Any] | None = None,
        bus: str = DEFAULT_BUS,
        description: str = "",
    ) -> RuleConfig:
        """Send events on ``bus`` that match to each of ``targets`` (up to five), e.g.
        ``app.rule("audit", pattern={...}, targets=[squall.targets.Bus("audit"),
        squall.targets.Http("https://hooks.example.com/orders")])``.
        """
        full = _checked_pattern(name, rule_pattern(event_type, pattern))
        config = app_rule(
            name, bus=bus, pattern=full, targets=tuple(targets), description=description
        )
        self.rules.append(config)
        return config

    def stream_resource(
        self, name: str, *, shards: int = 1, retention_s: int = DEFAULT_RETENTION_S
    ) -> StreamConfig:
        """Declare a stream of ``shards`` ordered logs, its records kept ``retention_s``."""
        config = StreamConfig(name=name, shards=shards, retention_s=retention_s)
        config.validate()
        self.streams.append(config)
        return config

    def stream(
        self,
        stream: str,
        *,
        batch_size: int = 100,
        batch_window_s: float = 0.0,
        starting_position: str = "latest",
        starting_timestamp: float | None = None,
        max_retries: int = -1,
        max_record_age_s: int = -1,
        bisect_on_error: bool = False,
        report_batch_item_failures: bool = False,
        on_failure: str | None = None,
        **function_options: Any,
    ) -> Callable[[F], F]:
        """Feed the function ``{"records": [...]}`` batches of ``stream``, each shard in
        order, one batch in flight per shard (see ``docs/design.md``, streams)."""

        def register(handler: F) -> F:
            name = function_options.get("name") or handler.__name__.replace("_", "-")
            trigger = StreamTrigger(
                function=name,
                stream=stream,
                batch_size=batch_size,
                batch_window_s=batch_window_s,
                starting_position=starting_position,
                starting_timestamp=starting_timestamp,
                max_retries=max_retries,
                max_record_age_s=max_record_age_s,
                bisect_on_error=bisect_on_error,
                report_batch_item_failures=report_batch_item_failures,
                on_failure=on_failure,
            )
            trigger.validate()
            if any(t.function == name and t.stream == stream for t in self.stream_triggers):
                raise ConfigError(
                    f"function {name!r} is triggered by stream {stream!r} twice", field="stream"
                )
            self._declare(name, handler, function_options)
            self.stream_triggers.append(trigger)
            return handler

        return register

    def queue_resource(
        self,
        name: str,
        *,
        fifo: bool = False,
        visibility_timeout_s: int = 30,
        retention_s: int = 345600,
        delay_s: int = 0,
        max_receive: int | None = None,
        dead_letter: str | None = None,
        content_based_dedup: bool = False,
    ) -> QueueConfig:
        """Declare a queue (SQS semantics). A message received ``max_receive`` times moves to
        the ``dead_letter`` queue (declare it too)."""
        config = QueueConfig(
            name=name,
            fifo=fifo,
            visibility_timeout_s=visibility_timeout_s,
            retention_s=retention_s,
            delay_s=delay_s,
            max_receive=max_receive,
            dead_letter=dead_letter,
            content_based_dedup=content_based_dedup,
        )
        try:
            config.validate()
        except InvalidInput as exc:
            raise ConfigError(exc.message, field=exc.field, queue=str(name)) from None
        if name in self.queues:
            raise ConfigError(f"queue {name!r} is declared twice", field="name", queue=name)
        self.queues[name] = config
        return config

    def queue(
        self,
        queue: str,
        *,
        batch_size: int = 10,
        batch_window_s: float = 0,
        max_concurrency: int | None = None,
        **function_options: Any,
    ) -> Callable[[F], F]:
        """Run the function on batches of ``queue``'s messages (a queue not declared with
        ``queue_resource`` is a standard one with its defaults). The handler gets a list of
        messages and may return the ids that failed; only those are received again."""

        def register(handler: F) -> F:
            name = function_options.get("name") or handler.__name__.replace("_", "-")
            self._declare(name, handler, function_options)
            self.queue_triggers.append(
                QueueTrigger(
                    queue=queue,
                    function=name,
                    batch_size=batch_size,
                    batch_window_s=batch_window_s,
                    max_concurrency=max_concurrency,
                )
            )
            return handler

        return register

    def schedule(
        self,
        expression: str,
        *,
        tz: str = "UTC",
        name: str | None = None,
        payload: Any = None,
        jitter_s: int = 0,
        missed: str = "skip",
        description: str = "",
        function: str | None = None,
        **function_options: Any,
    ) -> Callable[[F], F]:
        """Run the function on ``expression``: ``rate(5 minutes)``, ``cron(0 9 ? * MON-FRI *)``
        (AWS), ``*/15 * * * *`` (Unix) or ``at(2026-12-01T09:00:00)``, in zone ``tz``.

        The handler gets ``{"schedule", "time", "detail": payload, ...}`` as an async
        invocation. ``missed`` says what a start does with ticks due while the platform
        was down: ``"skip"`` them or ``"fire_once"``. Stack it for several schedules.
        ``name`` names the schedule; ``function`` the function (default: the handler's name).
        """

        def register(handler: F) -> F:
            fn = function or handler.__name__.replace("_", "-")
            self._declare(fn, handler, {**function_options, "name": fn})
            count = len([s for s in self.schedules if s.function == fn])
            config = ScheduleConfig(
                name=name or (fn if count == 0 else f"{fn}-{count}"),
                function=fn,
                expression=expression,
                tz=tz,
                payload=payload,
                jitter_s=jitter_s,
                missed=missed,
                description=description,
            )
            try:
                config.validate()
                parse_expression(expression, tz)
            except InvalidInput as exc:
                raise ConfigError(
                    f"function {fn!r}: {exc.message}",
                    field=exc.field,
                    function=fn,
                    value=repr(getattr(config, exc.field or "expression", expression)),
                ) from None
            self.schedules.append(config)
            return handler

        return register

    def bucket(self, name: str, *, max_object_bytes: int | None = None) -> BucketConfig:
        """Declare a bucket of objects (5 GiB each at most unless ``max_object_bytes``)."""
        config = (
            BucketConfig(name=name)
            if max_object_bytes is None
            else BucketConfig(name=name, max_object_bytes=max_object_bytes)
        )
        try:
            config.validate()
        except InvalidInput as exc:
            raise ConfigError(exc.message, field=exc.field, bucket=str(name)) from None
        if name in self.buckets:
            raise ConfigError(f"bucket {name!r} is declared twice", field="name", bucket=name)
        self.buckets[name] = config
        return config

    def on_object(
        self,
        bucket: str,
        *,
        events: list[str] | tuple[str, ...] = ("created",),
        prefix: str | None = None,
        suffix: str | None = None,
        rule: str | None = None,
        **function_options: Any,
    ) -> Callable[[F], F]:
        """Run the function for ``bucket``'s object events (``"created"``, ``"removed"``)
        whose key starts with ``prefix`` and ends with ``suffix``: a rule on the default bus
        (the handler gets the ``squall.object.*`` CloudEvent, as ``@app.on`` handlers do)."""
        types = event_types(list(events), f"on_object({bucket!r})")
        return self.on(
            pattern=object_pattern(bucket, types, prefix, suffix), rule=rule, **function_options
        )

    def table(
        self,
        name: str,
        *,
        partition_key: str,
        sort_key: str | None = None,
        key_types: dict[str, str] | None = None,
        indexes: dict[str, dict[str, str]] | None = None,
        ttl_attribute: str | None = None,
        stream: str | None = None,
    ) -> TableConfig:
        """Declare a table (see ``squall.engine.tables``): key attributes typed ``"S"`` or
        ``"N"`` in ``key_types`` (default ``"S"``), ``indexes`` as ``{"by_customer":
        {"partition_key": "customer", "sort_key": "created"}}``, items expiring at the epoch
        seconds in ``ttl_attribute``, and a change stream of ``"new_and_old"``, ``"new"``,
        ``"old"`` or ``"keys"`` images for ``on_change`` triggers."""
        config = table_config(
            name, partition_key=partition_key, sort_key=sort_key, key_types=key_types,
            indexes=indexes, ttl_attribute=ttl_attribute, stream=stream,
        )
        config.validate()
        self.tables.append(config)
        return config

    def on_change(
        self,
        table: str,
        *,
        images: str | None = None,
        pattern: dict[str, Any] | None = None,
        batch_size: int = 100,
        batch_window_s: float = 0.0,
        starting_position: str = "latest",
        max_retries: int = -1,
        bisect_on_error: bool = False,
        on_failure: str | None = None,
        **function_options: Any,
    ) -> Callable[[F], F]:
        """Feed the function ``{"records": [change, ...]}`` batches of ``table``'s changes,
        each key's in commit order; ``pattern`` (an event pattern over the change record)
        filters them, ``images`` ("new_and_old", "new", "old", "keys") trims them."""
        if images is not None and images not in IMAGES:
            raise ConfigError(
                f"on_change({table!r}): images={images!r} is not one of {', '.join(IMAGES)}",
                field="images",
            )
        if starting_position not in ("latest", "trim_horizon"):
            raise ConfigError(
                f"on_change({table!r}): starting_position={starting_position!r} is not"
                " 'latest' or 'trim_horizon'",
                field="starting_position",
            )
        if pattern is not None:
            _checked_pattern(f"changes of {table}", pattern)

        def register(handler: F) -> F:
            name = function_options.get("name") or handler.__name__.replace("_", "-")
            trigger = ChangeTrigger(
                function=name, table=table, images=images, pattern=pattern,
                batch_size=batch_size, batch_window_s=batch_window_s,
                starting_position=starting_position, max_retries=max_retries,
                bisect_on_error=bisect_on_error, on_failure=on_failure,
            )
            stream_trigger(trigger).validate()
            if any(t.function == name and t.table == table for t in self.change_triggers):
                raise ConfigError(
                    f"function {name!r} is triggered by changes of {table!r} twice",
                    field="table",
                )
            self._declare(name, handler, function_options)
            self.change_triggers.append(trigger)
            return handler

        return register

    def projection(
        self,
        name: str,
        *,
        from_streams: list[str] | tuple[str, ...] = (),
        partition_key: str,
        sort_key: str | None = None,
        key_types: dict[str, str] | None = None,
        indexes: dict[str, dict[str, str]] | None = None,
        batch_size: int = 100,
        **function_options: Any,
    ) -> Callable[[F], F]:
        """Build the read-model table ``name`` from the event store: ``def project(event,
        table, ctx)`` gets each event of the streams whose names start with one of
        ``from_streams`` (all when empty) in global order and writes ``table`` (a
        ``ctx.tables`` handle of the read model). Its writes and the projection's checkpoint
        commit together, so each event is applied once; ``squall projections rebuild``
        replays every event into a fresh table and swaps it in. Other functions read the
        table as ``ctx.tables[name]`` (``table.read:<name>`` in their permissions). The
        function is named after the handler (``function=`` to choose); other keyword
        arguments configure it as ``@app.function`` does."""

        def register(handler: F) -> F:
            options = dict(function_options)
            fn_name = options.pop("function", None) or handler.__name__.replace("_", "-")
            permissions = (*options.pop("permissions", ()), f"table:{name}")
            config = ProjectionConfig(
                name=name, function=fn_name, table=name, from_streams=tuple(from_streams),
                batch_size=batch_size,
            )
            try:
                config.validate()
            except InvalidInput as exc:
                raise ConfigError(exc.message, field=exc.field) from None
            self.table(name, partition_key=partition_key, sort_key=sort_key,
                       key_types=key_types, indexes=indexes)

            def run(batch: Any, ctx: Any) -> Any:
                table = ctx.tables[batch["table"]]
                for event in batch["events"]:
                    handler(event, table, ctx)
                return {"applied": len(batch["events"])}

            run.__doc__ = handler.__doc__ or f"Projection {name}"
            self.function(fn_name, retries=0, permissions=permissions, **options)(run)
            self.projections.append(config)
            return handler

        return register

    def workflow(
        self,
        name: str | None = None,
        *,
        step_retries: int = 3,
        step_backoff_s: float = 1.0,
        run_retries: int = 5,
        timeout_s: int = 900,
        **function_options: Any,
    ) -> Callable[[F], F]:
        """Declare a durable workflow ``def fulfil(wf, input)`` (or ``async def``): each
        ``wf.step`` is checkpointed, sleeps and event waits suspend the run (see
        ``squall.Workflow``).

        Steps are retried ``step_retries`` times with exponential backoff from
        ``step_backoff_s``. The workflow runs as a function of the same name; other keyword
        arguments (``permissions``, ``memory_mb``, …) configure it as ``@app.function`` does.
        """

        def register(handler: F) -> F:
            wf_name = name or handler.__name__.replace("_", "-")
            config = WorkflowConfig(
                name=wf_name,
                step_retries=step_retries,
                step_backoff_s=step_backoff_s,
                run_retries=run_retries,
                description=(inspect.getdoc(handler) or "").split("\n")[0],
            )
            config.validate()
            if wf_name in self.functions:
                raise ConfigError(
                    f"function {wf_name!r} is declared twice (to trigger a workflow, put"
                    " @app.workflow() below the trigger's decorator, next to the def)",
                    field="name",
                )

            def run(event: Any, ctx: Any) -> Any:
                from squall.runtime.workflow_context import run_workflow

                return run_workflow(handler, event, ctx)

            run.__doc__ = handler.__doc__
            self.function(wf_name, timeout_s=timeout_s, retries=0, **function_options)(run)
            self.workflows.append(config)
            self._workflow_handlers[wf_name] = handler
            return handler

        return register

    def state_machine(
        self,
        name: str,
        *,
        definition: dict[str, Any] | str | Path,
        run_retries: int = 5,
        timeout_s: int = 900,
        **function_options: Any,
    ) -> Machine:
        """Declare an Amazon States Language state machine: ``definition`` is the ASL
        document (a dict, JSON text or a JSON file's path), validated now. Task resources
        are function names (``"charge"`` or ``"squall:function:charge"``); the machine may
        invoke them. It runs as a durable workflow named ``name`` (Parallel branches and Map
        iterations as child runs of ``<name>-branch``); other keyword arguments configure
        its function as ``@app.workflow`` does."""
        from squall.asl.definition import load
        from squall.asl.interpreter import branch_workflow, run_branch, run_machine

        machine = load(name, definition)
        permissions = [*function_options.pop("permissions", [])]
        permissions += [f"invoke:{r}" for r in sorted(machine.resources())]
        options = dict(function_options, permissions=permissions)

        def body(wf: Any, value: Any) -> Any:
            return run_machine(wf, name, machine, value)

        body.__doc__ = f"State machine {name}."
        self.workflow(name, step_retries=0, run_retries=run_retries, timeout_s=timeout_s,
                      **options)(body)
        if any(state.branches for state in _all_states(machine)):

            def branch(wf: Any, request: Any) -> Any:
                return run_branch(wf, name, machine, request)

            branch.__doc__ = f"A Parallel branch or Map iteration of state machine {name}."
            self.workflow(branch_workflow(name), step_retries=0, run_retries=run_retries,
                          timeout_s=timeout_s, **options)(branch)
        self.state_machines[name] = machine
        return machine

    def _check_tasks(self) -> None:
        """Every Task of every state machine names a function of this app (which may be
        declared after the machine, so this waits for the whole app)."""
        workflows = {w.name for w in self.workflows}
        for name, machine in self.state_machines.items():
            for field, function in machine.tasks():
                if function not in self.functions or function in workflows:
                    raise ConfigError(
                        f"state machine {name!r}: {field}: {function!r} is not a function of"
                        f" app {self.name!r}" + (" (it is a workflow)" if function in workflows
                                                 else ""),
                        field=field,
                    )

    def _declare(self, name: str, handler: Any, function_options: dict[str, Any]) -> None:
        """Declare ``handler`` as function ``name`` the first time a trigger names it."""
        existing = self.functions.get(name)
        if existing is None:
            self.function(**function_options)(handler)
        elif self._workflow_handlers.get(name) is handler:
            if function_options.keys() - {"name"}:  # a workflow is configured by app.workflow
                raise ConfigError(
                    f"workflow {name!r}: give its options to @app.workflow(), not to a"
                    f" trigger ({', '.join(sorted(function_options.keys() - {'name'}))})",
                    field="name",
                )
        elif existing.handler is not handler:
            raise ConfigError(f"function {name!r} is declared twice", field="name")

    def budget(
        self,
        *,
        usd: float,
        period: str = "month",
        function: str | None = None,
        stop: bool = False,
    ) -> BudgetConfig:
        """Spend at most ``usd`` per UTC ``period`` ("day" or "month") on ``function`` (the
        whole app when None). Crossing it publishes ``squall.budget.exceeded`` on the default
        bus once per period; ``stop=True`` also sets the function's (or every function's)
        concurrency to 0, the guard against a runaway loop."""
        config = BudgetConfig(usd=usd, period=period, function=function, stop=stop)
        config.validate()
        self.budgets.append(config)
        return config

    def alert(
        self,
        name: str,
        *,
        metric: str,
        threshold: float,
        window: float | str = 300,
        function: str | None = None,
    ) -> AlertConfig:
        """Publish ``squall.alert.fired`` when ``metric`` ("error_rate", "p99_ms",
        "dlq_depth", "throttles") of ``function`` (all functions when None) over the last
        ``window`` (seconds, or "5m") goes above ``threshold``, and ``squall.alert.resolved``
        when it is back at or below it."""
        config = AlertConfig(
            name=name,
            metric=metric,
            threshold=threshold,
            window_s=window_seconds(window),
            function=function,
        )
        config.validate()
        self.alerts.append(config)
        return config

    def manifest(self, source: bytes = b"") -> Manifest:
        """The validated manifest; the version is a content hash of source and config."""
        self._check_tasks()
        base = self.root or Path.cwd()
        requirements = normalize_requirements(self._app_requirements(base), base)
        configs = [
            msgspec.structs.replace(
                fd.config, requirements=normalize_requirements(fd.config.requirements, base)
            )
            for fd in self.functions.values()
        ]
        digest = hashlib.sha256(source)
        digest.update(repr(requirements).encode())
        for config in configs:
            digest.update(repr(config).encode())
        for route in self.routes:
            digest.update(repr(route).encode())
        for rule in self.rules:
            digest.update(repr(rule).encode())
        digest.update(repr((self.streams, self.stream_triggers)).encode())
        for schedule in self.schedules:
            digest.update(repr(schedule).encode())
        queues = dict(self.queues)
        for trigger in self.queue_triggers:
            if isinstance(trigger.queue, str) and QUEUE_NAME_RE.match(trigger.queue):
                queues.setdefault(trigger.queue, QueueConfig(name=trigger.queue))
        digest.update(repr(sorted(queues.items())).encode())
        digest.update(repr(self.queue_triggers).encode())
        digest.update(repr((self.tables, self.change_triggers)).encode())
        digest.update(repr(self.settings).encode())
        digest.update(repr(sorted(self.buckets.items())).encode())
        digest.update(repr((self.budgets, self.alerts)).encode())
        digest.update(repr(self.workflows).encode())
        digest.update(repr(self.projections).encode())
        digest.update(repr(sorted(self.stages.items())).encode())
        manifest = Manifest(
            app=self.name,
            version=digest.hexdigest()[:12],
            functions=configs,
            routes=list(self.routes),
            rules=list(self.rules),
            schedules=list(self.schedules),
            settings=self.settings,
            streams=list(self.streams),
            stream_triggers=list(self.stream_triggers),
            queues=list(queues.values()),
            queue_triggers=list(self.queue_triggers),
            buckets=list(self.buckets.values()),
            tables=list(self.tables),
            change_triggers=list(self.change_triggers),
            budgets=list(self.budgets),
            alerts=list(self.alerts),
            workflows=list(self.workflows),
            projections=list(self.projections),
            requirements=requirements,
            stages=dict(self.stages),
        )
        manifest.validate()
        return manifest

    def _app_requirements(self, base: Path) -> list[str]:
        """``requirements.txt`` beside the app file (when the loader says where that is), then
        what ``App(requirements=…)`` declares."""
        found: list[str] = []
        if self.root is not None and (self.root / REQUIREMENTS_FILE).is_file():
            found += read_requirements(self.root / REQUIREMENTS_FILE)
        if isinstance(self.requirements, str):
            return [*found, *read_requirements(base / self.requirements)]
        return [*found, *self.requirements]


def _checked_alias(alias: str | None) -> None:
    if alias is not None:
        try:
            check_alias_name(alias)
        except InvalidInput as exc:
            raise ConfigError(exc.message, field="alias") from None


def _stage(name: str, settings: StageConfig | Mapping[str, Any]) -> StageConfig:
    if isinstance(settings, StageConfig):
        return settings
    try:
        return msgspec.convert(settings, StageConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"stage {name!r}: {exc}", field=f"stages.{name}") from None


def _checked_pattern(label: str, pattern: dict[str, Any]) -> dict[str, Any]:
    try:
        validate_pattern(pattern)
    except InvalidInput as exc:
        where = exc.field or "pattern"
        raise ConfigError(
            f"rule for {label!r}: the pattern is invalid at {where}: {exc.message}",
            field=f"pattern.{where}" if exc.field else "pattern",
        ) from None
    return pattern


def _all_states(machine: Machine) -> list[State]:
    states = list(machine.states.values())
    for state in machine.states.values():
        for nested in state.branches:
            states += _all_states(nested)
    return states
