"""Payload templates: ``Parameters``, ``ResultSelector`` and ``ItemSelector``.

A key ending in ``.$`` takes its value from a path (``"id.$": "$.order.id"``), the context
object (``"$$.Execution.Id"``) or an intrinsic call (``"States.Format('{}', $.a)"``); the
other keys are copied as they are, nested objects and arrays templated in turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from squall.asl import intrinsics, paths
from squall.asl.errors import PARAMETER_PATH_FAILURE, StatesError


class TemplateError(ValueError):
    """A template that cannot work; ``where`` is the key path inside it."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class Dynamic:
    source: paths.Path | intrinsics.Call


def compile_template(value: Any, where: str = "") -> Any:
    """The template with each ``.$`` value parsed (a ``Dynamic``)."""
    if isinstance(value, list):
        return [compile_template(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        here = f"{where}.{key}" if where else key
        if not key.endswith(".$"):
            out[key] = compile_template(item, here)
            continue
        if not isinstance(item, str):
            raise TemplateError(here, f"{key!r} ends with '.$', so its value must be a path"
                                " or an intrinsic call string")
        try:
            source: paths.Path | intrinsics.Call = (
                intrinsics.parse(item) if intrinsics.is_call(item) else paths.parse(item)
            )
        except (paths.PathError, intrinsics.IntrinsicError) as exc:
            raise TemplateError(here, str(exc)) from None
        out[key[:-2]] = Dynamic(source)
    return out


def apply(template: Any, document: Any, context: Any, draw: intrinsics.Draw) -> Any:
    """The template filled from ``document`` (the state's input or result) and ``context``;
    a path that finds nothing is ``States.ParameterPathFailure``."""
    if isinstance(template, Dynamic):
        source = template.source
        if isinstance(source, intrinsics.Call):
            try:
                return intrinsics.evaluate(source, document, context, draw)
            except paths.PathError as exc:
                raise StatesError(PARAMETER_PATH_FAILURE, str(exc)) from None
        try:
            return source.find(document, context)
        except paths.PathError as exc:
            raise StatesError(PARAMETER_PATH_FAILURE, str(exc)) from None
    if isinstance(template, list):
        return [apply(v, document, context, draw) for v in template]
    if isinstance(template, dict):
        return {k: apply(v, document, context, draw) for k, v in template.items()}
    return template
