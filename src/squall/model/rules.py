"""Event rules: which events on which bus go to which targets."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Literal

import msgspec

from squall.errors import ConfigError, InvalidInput
from squall.model.targets import (
    BUS_RE,
    BusTarget,
    FunctionTarget,
    QueueTarget,
    Target,
    validate_targets,
    with_ids,
)

DEFAULT_BUS = "default"
MAX_HOPS = 16  # an event caused by more events than this in a row is a loop
RULE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_DESCRIPTION = 512

Origin = Literal["app", "api"]


class RuleConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A rule: events on ``bus`` matching ``pattern`` go to each of ``targets``.

    Rules declared in the app (``@app.on``, ``app.rule``) have origin ``app`` and are
    read-only through the admin API; those made through it have origin ``api`` and are
    kept in the store.
    """

    name: str
    bus: str = DEFAULT_BUS
    pattern: dict[str, Any]
    targets: tuple[Target, ...] = ()
    description: str = ""
    enabled: bool = True
    origin: Origin = "app"

    def validate(self) -> None:
        """Check the rule on its own (not its pattern, nor what its targets name).

        Raises ``InvalidInput`` naming the field.
        """
        if not RULE_NAME_RE.fullmatch(self.name):
            raise InvalidInput(
                f"rule name {self.name!r} is invalid: 1-64 letters, digits, '.', '_' or '-'",
                field="name",
            )
        if not BUS_RE.fullmatch(self.bus):
            raise InvalidInput(
                f"rule {self.name!r}: bus {self.bus!r} is invalid (lower-case letters, digits,"
                " '.', '_' or '-', starting with a letter)",
                field="bus",
            )
        if len(self.description) > MAX_DESCRIPTION:
            raise InvalidInput(
                f"rule {self.name!r}: description is longer than {MAX_DESCRIPTION} characters",
                field="description",
            )
        validate_targets(self.targets)

    def functions(self) -> list[str]:
        """The functions this rule's targets invoke."""
        return [t.function for t in self.targets if isinstance(t, FunctionTarget)]


def check_references(
    rule: RuleConfig,
    functions: Collection[str],
    buses: Collection[str],
    queues: Collection[str] | None = None,
) -> None:
    """Every function target names one of ``functions``, every bus target one of ``buses``,
    every queue target one of ``queues`` (when given)."""
    for index, target in enumerate(rule.targets):
        if isinstance(target, FunctionTarget) and target.function not in functions:
            raise InvalidInput(
                f"rule {rule.name!r}: targets[{index}].function {target.function!r} names no"
                f" function of the app (functions: {', '.join(sorted(functions))})",
                field=f"targets[{index}].function",
            )
        if isinstance(target, QueueTarget) and queues is not None and target.queue not in queues:
            raise InvalidInput(
                f"rule {rule.name!r}: targets[{index}].queue {target.queue!r} names no queue"
                f" (queues: {', '.join(sorted(queues))})",
                field=f"targets[{index}].queue",
            )
        if isinstance(target, BusTarget) and target.bus not in buses:
            raise InvalidInput(
                f"rule {rule.name!r}: targets[{index}].bus {target.bus!r} names no bus (a bus"
                f" exists once a rule is on it; buses: {', '.join(sorted(buses))})",
                field=f"targets[{index}].bus",
            )


def app_rule(
    name: str,
    *,
    bus: str,
    pattern: dict[str, Any],
    targets: tuple[Target, ...],
    description: str = "",
) -> RuleConfig:
    """A rule declared in the app, checked on its own; errors are ``ConfigError``."""
    from squall.model.rule_input import shape_error

    rule = RuleConfig(
        name=name, bus=bus, pattern=pattern, targets=with_ids(targets), description=description
    )
    try:
        # Struct constructors do not check types: a round trip through msgspec does.
        built = msgspec.to_builtins(rule)
        msgspec.convert(built, RuleConfig)
        rule.validate()
    except msgspec.ValidationError as exc:
        error = shape_error(str(exc), built)
        raise ConfigError(f"rule {name!r}: {error.message}", field=error.field) from None
    except InvalidInput as exc:
        raise ConfigError(f"rule {name!r}: {exc.message}", field=exc.field) from None
    return rule


def rule_pattern(event_type: str | None, pattern: dict[str, Any] | None) -> dict[str, Any]:
    """The full pattern of ``@app.on(event_type, pattern=...)``."""
    full = dict(pattern or {})
    if event_type is not None:
        if "type" in full:
            raise ConfigError(
                f"rule for {event_type!r}: give the event type either as the first argument"
                " or as pattern['type'], not both",
                field="pattern.type",
            )
        full["type"] = [event_type]
    if not full:
        raise ConfigError("a rule needs an event type or a pattern", field="pattern")
    return full
