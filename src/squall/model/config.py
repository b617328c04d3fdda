"""Function configuration and its validation.

Validation errors name the function, the field, the value and the allowed range,
so ``squall up`` can print one line that says exactly how to fix the app.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from squall.errors import ConfigError, InvalidInput
from squall.model.alerts import AlertConfig, check_alerts
from squall.model.buckets import BucketConfig
from squall.model.budgets import BudgetConfig, check_budgets
from squall.model.event_store import ProjectionConfig
from squall.model.http import AppSettings, RouteConfig
from squall.model.queues import QueueConfig, QueueTrigger, check_dead_letter
from squall.model.requirements import check as check_requirements
from squall.model.rules import DEFAULT_BUS, RuleConfig, check_references
from squall.model.schedules import ScheduleConfig
from squall.model.stages import StageConfig, check_stages
from squall.model.streams import StreamConfig, StreamTrigger, check_streams
from squall.model.tables import ChangeTrigger, TableConfig, check_tables
from squall.model.workflows import WorkflowConfig

NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")
_ROUTE_PARAM = re.compile(r"\{[^}/]*\}")
SECRET_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
ACTIONS = (
    "invoke", "publish", "put", "send", "bucket", "bucket.read", "table", "table.read",
    "workflow", "events_store", "events_store.read",
)

# field -> (minimum, maximum), inclusive.
RANGES: dict[str, tuple[int, int]] = {
    "memory_mb": (128, 10240),
    "timeout_s": (1, 900),
    "concurrency": (0, 1000),  # 0 stops the function (throttles it)
    "min_instances": (0, 1000),
    "keep_alive_s": (0, 86400),
    "retries": (0, 2),
    "max_event_age_s": (60, 21600),
}


class FunctionConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the platform needs to know about one function."""

    name: str
    memory_mb: int = 128
    timeout_s: int = 30
    concurrency: int = 10
    min_instances: int = 0
    keep_alive_s: int = 300
    retries: int = 2
    max_event_age_s: int = 21600
    on_success: str | None = None
    on_failure: str | None = None
    dead_letter: bool = True
    env: dict[str, str] = {}
    secrets: tuple[str, ...] = ()  # names of platform secrets the sandbox sees (ctx.secrets)
    permissions: tuple[str, ...] = ()  # "action:resource", e.g. "invoke:billing", "invoke:*"
    # pip requirements of this function alone (the app's come on top): its sandboxes fork
    # from a zygote running in an environment with both installed
    requirements: tuple[str, ...] = ()
    has_init: bool = False
    is_async: bool = False
    description: str = ""

    def validate(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise ConfigError(
                f"function name {self.name!r} is invalid: use 1-64 letters, digits, '-' or '_',"
                " starting with a letter",
                field="name",
                function=str(self.name),
                value=str(self.name),
            )
        for field, (low, high) in RANGES.items():
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(
                    f"function {self.name!r}: {field}={value!r} is out of range"
                    f" (allowed {low}-{high})",
                    field=field,
                    function=self.name,
                    value=repr(value),
                    allowed=f"{low}-{high}",
                )
        if self.min_instances > self.concurrency:
            raise ConfigError(
                f"function {self.name!r}: min_instances={self.min_instances} exceeds"
                f" concurrency={self.concurrency} (allowed 0-{self.concurrency})",
                field="min_instances",
                function=self.name,
                value=repr(self.min_instances),
                allowed=f"0-{self.concurrency}",
            )
        if not isinstance(self.dead_letter, bool):
            raise ConfigError(
                f"function {self.name!r}: dead_letter={self.dead_letter!r} must be true or false",
                field="dead_letter",
                function=self.name,
                value=repr(self.dead_letter),
            )
        if not isinstance(self.env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.env.items()
        ):
            raise ConfigError(
                f"function {self.name!r}: env must map strings to strings",
                field="env",
                function=self.name,
                value=repr(self.env),
            )

        check_requirements(self.requirements, function=self.name)
        for permission in self.permissions:
            action, _, resource = permission.partition(":")
            if action not in ACTIONS or not resource:
                raise ConfigError(
                    f"function {self.name!r}: permission {permission!r} is not"
                    f" 'action:resource' with action one of {', '.join(ACTIONS)}",
                    field="permissions",
                    function=self.name,
                    value=permission,
                )
        for secret in self.secrets:
            if not SECRET_NAME_RE.match(secret):
                raise ConfigError(
                    f"function {self.name!r}: secret name {secret!r} is invalid"
                    " (letters, digits and '_', starting with a letter)",
                    field="secrets",
                    function=self.name,
                    value=secret,
                )

    def allows(self, action: str, resource: str) -> bool:
        """Least privilege: only what ``permissions`` grants, ``action:*`` for any resource."""
        return f"{action}:{resource}" in self.permissions or f"{action}:*" in self.permissions

    def updated(self, changes: dict[str, Any]) -> FunctionConfig:
        """A validated copy with ``changes`` applied (used by the admin API)."""
        unknown = sorted(set(changes) - set(UPDATABLE))
        if unknown:
            raise ConfigError(
                f"function {self.name!r}: {unknown[0]!r} cannot be updated"
                f" (updatable: {', '.join(UPDATABLE)})",
                field=unknown[0],
                function=self.name,
            )
        new = msgspec.structs.replace(self, **changes)
        new.validate()
        return new


UPDATABLE = (
    "memory_mb",
    "timeout_s",
    "concurrency",
    "min_instances",
    "keep_alive_s",
    "retries",
    "max_event_age_s",
    "on_success",
    "on_failure",
    "dead_letter",
    "env",
    "secrets",
    "permissions",
    "description",
)


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """What an app declares, as reported by its zygote after import."""

    app: str
    version: str
    functions: list[FunctionConfig]
    routes: list[RouteConfig] = []
    rules: list[RuleConfig] = []
    schedules: list[ScheduleConfig] = []
    settings: AppSettings = AppSettings()
    streams: list[StreamConfig] = []
    stream_triggers: list[StreamTrigger] = []
    queues: list[QueueConfig] = []
    queue_triggers: list[QueueTrigger] = []
    buckets: list[BucketConfig] = []
    tables: list[TableConfig] = []
    change_triggers: list[ChangeTrigger] = []
    budgets: list[BudgetConfig] = []
    alerts: list[AlertConfig] = []
    workflows: list[WorkflowConfig] = []
    projections: list[ProjectionConfig] = []
    requirements: tuple[str, ...] = ()  # the app's: requirements.txt beside it and App(...)
    stages: dict[str, StageConfig] = {}  # per-environment settings (squall up --stage)

    def validate(self) -> None:
        names = {f.name for f in self.functions}
        check_requirements(self.requirements)
        check_stages(self.stages)
        self._validate_projections(names)
        self._validate_buckets()
        check_budgets(self.budgets, names)
        check_alerts(self.alerts, names)
        check_streams(self.streams, self.stream_triggers, names)
        check_tables(self.tables, self.change_triggers, names)
        self._validate_queues(names)
        for fn in self.functions:
            fn.validate()
            for field in ("on_success", "on_failure"):
                target = getattr(fn, field)
                if target is not None and target not in names:
                    raise ConfigError(
                        f"function {fn.name!r}: {field}={target!r} names no function of the app"
                        f" (functions: {', '.join(sorted(names))})",
                        field=field,
                        function=fn.name,
                        value=repr(target),
                    )
        rule_names: set[str] = set()
        for rule in self.rules:
            try:
                rule.validate()
                check_references(
                    rule,
                    names,
                    {DEFAULT_BUS, *(r.bus for r in self.rules)},
                    {q.name for q in self.queues},
                )
            except InvalidInput as exc:
                raise ConfigError(exc.message, field=exc.field, rule=rule.name) from None
            if rule.name in rule_names:
                raise ConfigError(f"rule {rule.name!r} is declared twice", field="name")
            rule_names.add(rule.name)
        self._validate_schedules(names)
        seen: dict[tuple[str, str], tuple[str, str]] = {}
        for route in self.routes:
            route.validate()
            if route.function not in names:
                raise ConfigError(
                    f"route {route.method} {route.path} names no function {route.function!r}",
                    field="function",
                    value=route.function,
                )
            # Paths that differ only in their parameters' names match the same requests.
            key = (route.method, _ROUTE_PARAM.sub("{}", route.path))
            if key in seen:
                other_path, other = seen[key]
                same = "" if other_path == route.path else f" (as {other_path})"
                raise ConfigError(
                    f"route {route.method} {route.path} collides: it is declared by both"
                    f" {other!r}{same} and {route.function!r}",
                    field="path",
                    value=route.path,
                )
            seen[key] = (route.path, route.function)
            if route.auth == "jwt" and self.settings.jwt is None:
                raise ConfigError(
                    f"route {route.method} {route.path} has auth='jwt' but the app sets no"
                    " JWT verification: pass App(..., jwt=squall.JwtConfig(...))",
                    field="jwt",
                    value=route.path,
                )

    def _validate_projections(self, functions: set[str]) -> None:
        tables = {t.name for t in self.tables}
        seen: set[str] = set()
        for projection in self.projections:
            try:
                projection.validate()
            except InvalidInput as exc:
                raise ConfigError(exc.message, field=exc.field) from None
            if projection.name in seen:
                raise ConfigError(
                    f"projection {projection.name!r} is declared twice", field="name"
                )
            seen.add(projection.name)
            if projection.function not in functions or projection.table not in tables:
                raise ConfigError(
                    f"projection {projection.name!r} names an unknown function or table",
                    field="function",
                )

    def _validate_buckets(self) -> None:
        seen: set[str] = set()
        for bucket in self.buckets:
            try:
                bucket.validate()
            except InvalidInput as exc:
                raise ConfigError(exc.message, field=exc.field, bucket=str(bucket.name)) from None
            if bucket.name in seen:
                raise ConfigError(f"bucket {bucket.name!r} is declared twice", field="name")
            seen.add(bucket.name)

    def _validate_schedules(self, functions: set[str]) -> None:
        schedule_names: set[str] = set()
        for schedule in self.schedules:
            try:
                schedule.validate()
            except InvalidInput as exc:
                raise ConfigError(exc.message, field=exc.field, schedule=schedule.name) from None
            if schedule.function not in functions:
                raise ConfigError(
                    f"schedule {schedule.name!r} names no function {schedule.function!r}",
                    field="function",
                    value=schedule.function,
                )
            if schedule.name in schedule_names:
                raise ConfigError(f"schedule {schedule.name!r} is declared twice", field="name")
            schedule_names.add(schedule.name)

    def _validate_queues(self, functions: set[str]) -> None:
        queues = {q.name: q for q in self.queues}
        for queue in self.queues:
            try:
                queue.validate()
                check_dead_letter(queue, queues)
            except InvalidInput as exc:
                raise ConfigError(exc.message, field=exc.field, queue=queue.name) from None
        for trigger in self.queue_triggers:
            if trigger.function not in functions:
                raise ConfigError(
                    f"queue trigger on {trigger.queue!r} names no function {trigger.function!r}",
                    field="function",
                    value=trigger.function,
                )
            trigger.validate(queues.get(trigger.queue))
