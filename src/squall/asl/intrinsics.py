"""Intrinsic functions: ``States.Format('Hi {}', $.name)`` and the rest of the spec's list.

:func:`parse` reads the call syntax into a tree (nested calls, quoted strings with the
escapes ``\\'`` ``\\{`` ``\\}`` ``\\\\``, numbers, ``true``/``false``/``null``, paths) and
checks each function's arity and the literal arguments it can; :func:`evaluate` runs a tree
against a state's input. ``States.UUID`` and ``States.MathRandom`` are drawn through the
caller's ``draw`` hook, which the interpreter records as a workflow step so a replay sees
the same value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from squall.asl import paths
from squall.asl.errors import INTRINSIC_FAILURE, StatesError

Draw = Callable[[str, Callable[[], Any]], Any]
MAX_ARRAY_RANGE = 1000
# Escaped braces become private-use characters so States.Format tells them from its
# placeholders; every string is given back its braces before it is used.
_ESCAPED = {"{": "\ue000", "}": "\ue001"}
_UNESCAPE = str.maketrans({"\ue000": "{", "\ue001": "}"})
HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384",
          "SHA-512": "sha512"}


class IntrinsicError(ValueError):
    """An intrinsic call that does not parse or cannot be right (unknown function, arity)."""


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]  # literals, paths.Path or Call


# name -> (minimum, maximum) arguments (None: any number)
ARITY: dict[str, tuple[int, int | None]] = {
    "States.Format": (1, None),
    "States.StringToJson": (1, 1),
    "States.JsonToString": (1, 1),
    "States.Array": (0, None),
    "States.ArrayPartition": (2, 2),
    "States.ArrayContains": (2, 2),
    "States.ArrayRange": (3, 3),
    "States.ArrayGetItem": (2, 2),
    "States.ArrayLength": (1, 1),
    "States.ArrayUnique": (1, 1),
    "States.Base64Encode": (1, 1),
    "States.Base64Decode": (1, 1),
    "States.Hash": (2, 2),
    "States.JsonMerge": (3, 3),
    "States.MathRandom": (2, 3),
    "States.MathAdd": (2, 2),
    "States.StringSplit": (2, 2),
    "States.UUID": (0, 0),
}


def is_call(text: str) -> bool:
    return text.startswith("States.")


def parse(text: str) -> Call:
    parser = _Parser(text)
    call = parser.call()
    parser.space()
    if parser.at != len(text):
        raise IntrinsicError(f"unexpected {text[parser.at:]!r} after the call's ')'")
    return call


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def space(self) -> None:
        while self.at < len(self.text) and self.text[self.at] == " ":
            self.at += 1

    def fail(self, what: str) -> IntrinsicError:
        return IntrinsicError(f"{what} at character {self.at + 1} of {self.text!r}")

    def call(self) -> Call:
        start = self.at
        while self.at < len(self.text) and (self.text[self.at].isalnum()
                                            or self.text[self.at] == "."):
            self.at += 1
        name = self.text[start:self.at]
        if name not in ARITY:
            known = ", ".join(sorted(ARITY))
            raise IntrinsicError(f"{name or self.text!r} is not an intrinsic function ({known})")
        self.space()
        if self.at >= len(self.text) or self.text[self.at] != "(":
            raise self.fail(f"expected '(' after {name}")
        self.at += 1
        args: list[Any] = []
        self.space()
        if self.peek() == ")":
            self.at += 1
        else:
            while True:
                self.space()
                args.append(self.argument())
                self.space()
                char = self.peek()
                self.at += 1
                if char == ")":
                    break
                if char != ",":
                    self.at -= 1
                    raise self.fail("expected ',' or ')'")
        call = Call(name, tuple(args))
        _check(call)
        if name != "States.Format":
            call = Call(name, tuple(_unescaped(a) for a in args))
        else:
            call = Call(name, (args[0], *(_unescaped(a) for a in args[1:])))
        return call

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def argument(self) -> Any:
        char = self.peek()
        if char == "'":
            return self.string()
        if char == "$":
            return self.path()
        if self.text.startswith("States.", self.at):
            return self.call()
        start = self.at
        while self.at < len(self.text) and self.text[self.at] not in ",) ":
            self.at += 1
        word = self.text[start:self.at]
        literals: dict[str, Any] = {"true": True, "false": False, "null": None}
        if word in literals:
            return literals[word]
        try:
            number = json.loads(word)
        except ValueError:
            number = None
        if isinstance(number, int | float) and not isinstance(number, bool):
            return number
        self.at = start
        raise self.fail(f"{word or 'nothing'!r} is not an argument (a 'string', a number,"
                        " true/false/null, a path or an intrinsic call)")

    def string(self) -> str:
        self.at += 1
        out: list[str] = []
        while self.at < len(self.text):
            char = self.text[self.at]
            if char == "\\":
                following = self.text[self.at + 1 : self.at + 2]
                if following not in ("'", "{", "}", "\\"):
                    raise self.fail(f"'\\{following}' is not an escape (\\' \\{{ \\}} \\\\)")
                out.append(_ESCAPED.get(following, following))
                self.at += 2
                continue
            if char == "'":
                self.at += 1
                return "".join(out)
            out.append(char)
            self.at += 1
        raise self.fail("the string is not closed")

    def path(self) -> paths.Path:
        start = self.at
        depth = 0
        quote = ""
        while self.at < len(self.text):
            char = self.text[self.at]
            if quote:
                if char == quote:
                    quote = ""
            elif char in "'\"" and depth:
                quote = char
            elif char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
            elif char in ",) " and not depth:
                break
            self.at += 1
        try:
            return paths.parse(self.text[start:self.at])
        except paths.PathError as exc:
            raise IntrinsicError(str(exc)) from None


def _unescaped(value: Any) -> Any:
    return value.translate(_UNESCAPE) if isinstance(value, str) else value


def _check(call: Call) -> None:
    low, high = ARITY[call.name]
    count = len(call.args)
    if count < low or (high is not None and count > high):
        wanted = f"{low}" if low == high else f"at least {low}" if high is None else (
            f"{low} to {high}")
        raise IntrinsicError(f"{call.name} takes {wanted} argument(s), not {count}")
    first = call.args[0] if call.args else None
    if call.name == "States.Format":
        if not isinstance(first, str):
            raise IntrinsicError("States.Format's first argument must be a 'template' string")
        holes = _placeholders(first)
        if holes != count - 1:
            raise IntrinsicError(
                f"States.Format's template has {holes} placeholder(s) but {count - 1}"
                " argument(s) follow it"
            )
    if call.name == "States.Hash" and isinstance(call.args[1], str) and (
        call.args[1] not in HASHES
    ):
        raise IntrinsicError(f"States.Hash: {call.args[1]!r} is not one of {', '.join(HASHES)}")
    if call.name == "States.JsonMerge" and call.args[2] is not False:
        raise IntrinsicError("States.JsonMerge's third argument must be false (a shallow merge)")


def _placeholders(template: str) -> int:
    count, i = 0, 0
    while i < len(template):
        if template.startswith("{}", i):
            count += 1
            i += 2
            continue
        i += 1
    return count


def evaluate(call: Call, document: Any, context: Any, draw: Draw) -> Any:
    """The call's value; ``StatesError(States.IntrinsicFailure)`` when its arguments are
    wrong at run time, ``paths.PathError`` when a path argument finds nothing."""
    args = [
        evaluate(a, document, context, draw) if isinstance(a, Call)
        else a.find(document, context) if isinstance(a, paths.Path)
        else a
        for a in call.args
    ]
    try:
        return _FUNCTIONS[call.name](args, draw)
    except StatesError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, binascii.Error) as exc:
        raise StatesError(INTRINSIC_FAILURE, f"{call.name}: {exc}") from None


def _need(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in (
        kind if isinstance(kind, tuple) else (kind,)
    )):
        raise TypeError(f"{what} must be {_kinds(kind)}, not {json.dumps(value)[:60]}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "an array",
             dict: "an object", bool: "a boolean"}
    group = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in group)


def _integer(value: Any, what: str) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return int(_need(value, int, what))


def _format(args: list[Any], draw: Draw) -> str:
    template, values = args[0], iter(args[1:])
    out: list[str] = []
    i = 0
    while i < len(template):
        if template.startswith("{}", i):
            value = next(values)
            if isinstance(value, dict | list):
                raise TypeError("an argument is an object or array (use States.JsonToString)")
            out.append(value if isinstance(value, str) else json.dumps(value))
            i += 2
        else:
            out.append(template[i])
            i += 1
    return "".join(out).translate(_UNESCAPE)


def _partition(args: list[Any], draw: Draw) -> list[Any]:
    array = _need(args[0], list, "the array")
    size = _integer(args[1], "the chunk size")
    if size < 1:
        raise ValueError("the chunk size must be positive")
    return [array[i : i + size] for i in range(0, len(array), size)]


def _range(args: list[Any], draw: Draw) -> list[int]:
    start, end, step = (_integer(a, n) for a, n in zip(args, ("start", "end", "step"),
                                                        strict=True))
    if step == 0:
        raise ValueError("the step must not be 0")
    values = list(range(start, end + (1 if step > 0 else -1), step))
    if len(values) > MAX_ARRAY_RANGE:
        raise ValueError(f"the range has more than {MAX_ARRAY_RANGE} items")
    return values


def _key(value: Any) -> str:
    """JSON equality: ``1`` and ``true`` differ, key order does not matter."""
    return json.dumps(value, sort_keys=True)


def _unique(args: list[Any], draw: Draw) -> list[Any]:
    seen: set[str] = set()
    out: list[Any] = []
    for item in _need(args[0], list, "the array"):
        key = _key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _decode64(args: list[Any], draw: Draw) -> str:
    data = base64.b64decode(_need(args[0], str, "the data"), validate=True)
    return data.decode()


def _hash(args: list[Any], draw: Draw) -> str:
    algorithm = _need(args[1], str, "the algorithm")
    if algorithm not in HASHES:
        raise ValueError(f"{algorithm!r} is not one of {', '.join(HASHES)}")
    data = args[0] if isinstance(args[0], str) else json.dumps(args[0], separators=(",", ":"))
    return hashlib.new(HASHES[algorithm], data.encode()).hexdigest()


def _merge(args: list[Any], draw: Draw) -> dict[str, Any]:
    left = _need(args[0], dict, "the first object")
    right = _need(args[1], dict, "the second object")
    return {**left, **right}


def _random(args: list[Any], draw: Draw) -> int:
    start, end = _integer(args[0], "start"), _integer(args[1], "end")
    if end <= start:
        raise ValueError("end must be greater than start")
    if len(args) == 3:  # seeded: the same every time, no need to record it
        return random.Random(_integer(args[2], "seed")).randrange(start, end)
    value: int = draw("States.MathRandom", lambda: random.randrange(start, end))
    return value


def _add(args: list[Any], draw: Draw) -> int:
    return _integer(args[0], "the first value") + _integer(args[1], "the second value")


def _split(args: list[Any], draw: Draw) -> list[str]:
    text = _need(args[0], str, "the string")
    delimiters = _need(args[1], str, "the delimiters")
    parts = [text]
    for delimiter in delimiters:
        parts = [piece for part in parts for piece in part.split(delimiter)]
    return [part for part in parts if part]


def _string_to_json(args: list[Any], draw: Draw) -> Any:
    return json.loads(_need(args[0], str, "the argument"))


def _uuid(args: list[Any], draw: Draw) -> str:
    value: str = draw("States.UUID", lambda: str(uuid.uuid4()))
    return value


_FUNCTIONS: dict[str, Callable[[list[Any], Draw], Any]] = {
    "States.Format": _format,
    "States.StringToJson": _string_to_json,
    "States.JsonToString": lambda a, d: json.dumps(a[0], separators=(",", ":")),
    "States.Array": lambda a, d: list(a),
    "States.ArrayPartition": _partition,
    "States.ArrayContains": lambda a, d: _key(a[1]) in {
        _key(item) for item in _need(a[0], list, "the array")
    },
    "States.ArrayRange": _range,
    "States.ArrayGetItem": lambda a, d: _need(a[0], list, "the array")[
        _integer(a[1], "the index")
    ],
    "States.ArrayLength": lambda a, d: len(_need(a[0], list, "the array")),
    "States.ArrayUnique": _unique,
    "States.Base64Encode": lambda a, d: base64.b64encode(
        _need(a[0], str, "the data").encode()
    ).decode(),
    "States.Base64Decode": _decode64,
    "States.Hash": _hash,
    "States.JsonMerge": _merge,
    "States.MathRandom": _random,
    "States.MathAdd": _add,
    "States.StringSplit": _split,
    "States.UUID": _uuid,
}
