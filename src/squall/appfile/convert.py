"""Turn YAML values into the types the ``App`` methods take, naming the path of what is wrong.

Type hints come from the methods themselves, so a manifest accepts exactly what the
decorators accept. Mappings bound for msgspec Structs (``CorsConfig``, rule targets, …) are
checked key by key first, because most of those Structs ignore unknown fields.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from squall.errors import ConfigError

ARRAYS = (list, tuple, set, frozenset)


def join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def unknown_key(path: str, key: object, allowed: Iterable[str]) -> ConfigError:
    where = join(path, key)
    names = sorted(allowed)
    close = difflib.get_close_matches(str(key), names, n=1)
    hint = f"did you mean {close[0]}?" if close else f"expected one of {', '.join(names)}"
    return ConfigError(f"{where}: unknown key ({hint})", field=where)


def check_keys(path: str, mapping: Mapping[Any, Any], allowed: Iterable[str]) -> None:
    names = set(allowed)
    for key in mapping:
        if not isinstance(key, str):
            raise ConfigError(f"{join(path, key)}: keys must be strings", field=join(path, key))
        if key not in names:
            raise unknown_key(path, key, names)


def parameters(method: Callable[..., Any]) -> dict[str, tuple[Any, bool]]:
    """Keyword name -> (type hint, required) of ``method``, without ``self`` and ``**``."""
    hints = typing.get_type_hints(method)
    found: dict[str, tuple[Any, bool]] = {}
    for name, param in inspect.signature(method).parameters.items():
        if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        found[name] = (hints.get(name, Any), param.default is param.empty)
    return found


def convert(value: Any, hint: Any, path: str) -> Any:
    """``value`` as ``hint``; ConfigError naming ``path`` (and the part inside it) if not."""
    hint = normalise(hint)
    _check_struct_keys(value, hint, path)
    try:
        return msgspec.convert(value, hint)
    except msgspec.ValidationError as exc:
        message, _, inner = str(exc).partition(" - at `$")
        where = path + inner.rstrip("`")
        text = message[:1].lower() + message[1:]
        raise ConfigError(f"{where}: {text}", field=where) from None


def normalise(hint: Any) -> Any:
    """``hint`` as msgspec can convert to: one array type per union (``list[str] |
    tuple[str, ...]`` is a list), no ``Path`` (files are named by their own keys)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members: list[Any] = []
        for arg in typing.get_args(hint):
            if arg is Path:
                continue
            arg = normalise(arg)
            array = typing.get_origin(arg) in ARRAYS or arg in ARRAYS
            if array and any(typing.get_origin(m) in ARRAYS or m in ARRAYS for m in members):
                continue
            members.append(arg)
        return members[0] if len(members) == 1 else typing.Union[tuple(members)]  # noqa: UP007
    if origin in ARRAYS or origin is dict:
        args = tuple(normalise(arg) for arg in typing.get_args(hint))
        return origin[args] if args else hint
    return hint


def _structs(hint: Any) -> list[type[msgspec.Struct]]:
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return [hint]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [s for arg in typing.get_args(hint) for s in _structs(arg)]
    return []


def _check_struct_keys(value: Any, hint: Any, path: str) -> None:
    """Walk ``value`` along ``hint``; a mapping bound for a Struct may hold only its fields."""
    if isinstance(value, Mapping):
        struct = _struct_for(value, _structs(hint))
        if struct is not None:
            fields = {f.encode_name: f.type for f in msgspec.structs.fields(struct)}
            tag_field = struct.__struct_config__.tag_field
            check_keys(path, value, [*fields, *([tag_field] if tag_field else [])])
            for key, item in value.items():
                if key in fields:
                    _check_struct_keys(item, fields[key], join(path, key))
            return
        for arg in _members(hint):
            if typing.get_origin(arg) is dict and len(typing.get_args(arg)) == 2:
                for key, item in value.items():
                    _check_struct_keys(item, typing.get_args(arg)[1], join(path, key))
    elif isinstance(value, list):
        for arg in _members(hint):
            if typing.get_origin(arg) in ARRAYS and typing.get_args(arg):
                for index, item in enumerate(value):
                    _check_struct_keys(item, typing.get_args(arg)[0], f"{path}[{index}]")


def _members(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _struct_for(
    value: Mapping[Any, Any], structs: list[type[msgspec.Struct]]
) -> type[msgspec.Struct] | None:
    """The Struct ``value`` decodes to: the only one, or the one its tag names (an
    unknown tag is left to msgspec, whose message lists the valid ones)."""
    if len(structs) == 1 and structs[0].__struct_config__.tag_field is None:
        return structs[0]
    for struct in structs:
        config = struct.__struct_config__
        if config.tag_field is not None and value.get(config.tag_field) == config.tag:
            return struct
    return None
