"""AWS's six-field cron, checked field by field and translated into croniter's form.

croniter does the calendar arithmetic (``L``, ``nW`` and ``n#k`` included), but it reads
Unix cron: day-of-week 0-6 from Sunday where AWS counts 1-7, ``nL`` where croniter wants
``Ln``, a lone ``L`` (Saturday in AWS) and AWS's rule that exactly one of day-of-month and
day-of-week is ``?``. Those differences, and errors that name the field, are why this
module is hand-written.
"""

from __future__ import annotations

import re

from squall.errors import InvalidInput

FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
RANGES = {
    "minutes": (0, 59),
    "hours": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (1, 7),
    "year": (1970, 2099),  # AWS goes on to 2199; croniter's years end at 2099
}
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # AWS: SUN=1 ... SAT=7

_ITEM = re.compile(r"^(?P<start>\*|[A-Z0-9]+)(?:-(?P<end>[A-Z0-9]+))?(?:/(?P<step>\d+))?$")
_NTH = re.compile(r"^(?P<day>[A-Z0-9]+)#(?P<nth>\d+)$")
_LAST_DAY = re.compile(r"^(?P<day>[A-Z0-9]+)L$")
_WEEKDAY = re.compile(r"^(?P<day>\d+)W$")


def translate(body: str, text: str) -> str:
    """``0 9 ? * MON-FRI *`` -> the 7-field croniter expression (minute ... dow second year)."""
    fields = body.split()
    if len(fields) != 6:
        raise _error(
            text,
            "expression",
            f"cron() takes six fields ({' '.join(FIELDS)}), got {len(fields)}",
        )
    values = dict(zip(FIELDS, (f.upper() for f in fields), strict=True))
    dom, dow = values["day-of-month"], values["day-of-week"]
    if (dom == "?") == (dow == "?"):
        raise _error(
            text,
            "day-of-month" if dom != "?" else "day-of-week",
            "exactly one of day-of-month and day-of-week must be '?'"
            f" (got {dom!r} and {dow!r})",
        )
    out = [_plain(text, name, values[name]) for name in ("minutes", "hours")]
    out.append("*" if dom == "?" else _day_of_month(text, dom))
    out.append(_plain(text, "month", values["month"]))
    out.append("*" if dow == "?" else _day_of_week(text, dow))
    out.append("0")  # croniter's seconds field
    out.append(_plain(text, "year", values["year"]))
    return " ".join(out)


def _plain(text: str, field: str, value: str) -> str:
    """Lists of ``*``, ``a``, ``a-b``, with an optional ``/step``; names for months."""
    return ",".join(_range(text, field, item) for item in _items(text, field, value))


def _day_of_month(text: str, value: str) -> str:
    items = []
    for item in _items(text, "day-of-month", value):
        if item == "L":
            items.append("L")
            continue
        weekday = _WEEKDAY.match(item)
        if weekday:
            day = _number(text, "day-of-month", weekday["day"])
            if "," in value:
                raise _error(text, "day-of-month", f"{item!r}: W takes a single day, no list")
            items.append(f"{day}W")
            continue
        if "L" in item or "W" in item:
            raise _error(
                text, "day-of-month", f"{item!r} is not L, nW (1-31) or a day, range or step"
            )
        items.append(_range(text, "day-of-month", item))
    return ",".join(items)


def _day_of_week(text: str, value: str) -> str:
    items = []
    for item in _items(text, "day-of-week", value):
        if item == "L":
            items.append("6")  # the last day of the week: Saturday
            continue
        nth = _NTH.match(item)
        if nth:
            count = int(nth["nth"])
            if not 1 <= count <= 5:
                raise _error(text, "day-of-week", f"{item!r}: the n in day#n is 1-5")
            items.append(f"{_unix_day(text, nth['day'])}#{count}")
            continue
        last = _LAST_DAY.match(item)
        if last:
            items.append(f"L{_unix_day(text, last['day'])}")
            continue
        match = _ITEM.match(item)
        if match is None or match["step"] is not None or "#" in item:
            raise _error(
                text,
                "day-of-week",
                f"{item!r} is not a day (1-7 or SUN-SAT), a range, L, nL or day#n",
            )
        if match["start"] == "*":
            items.append("*")
            continue
        start = _unix_day(text, match["start"])
        if match["end"] is None:
            items.append(str(start))
            continue
        end = _unix_day(text, match["end"])
        if end < start:
            raise _error(text, "day-of-week", f"{item!r}: the range runs backwards")
        items.append(f"{start}-{end}")
    return ",".join(items)


def _items(text: str, field: str, value: str) -> list[str]:
    items = value.split(",")
    if "?" in value:
        raise _error(text, field, "'?' is allowed only alone, in day-of-month or day-of-week")
    if any(not item for item in items):
        raise _error(text, field, f"{value!r} has an empty list item")
    return items


def _range(text: str, field: str, item: str) -> str:
    match = _ITEM.match(item)
    if match is None:
        raise _error(text, field, f"{item!r} is not a value, a range (a-b) or a step (a/n)")
    high = RANGES[field][1]
    start, end, step = match["start"], match["end"], match["step"]
    if step is not None and not 1 <= int(step) <= high:
        raise _error(text, field, f"{item!r}: the step must be 1-{high}")
    if start == "*":
        if end is not None:
            raise _error(text, field, f"{item!r}: '*' cannot start a range")
        return item
    first = _number(text, field, start)
    if end is None:
        return f"{first}/{step}" if step is not None else str(first)
    last = _number(text, field, end)
    if last < first:
        raise _error(text, field, f"{item!r}: the range runs backwards")
    return f"{first}-{last}" + (f"/{step}" if step is not None else "")


def _number(text: str, field: str, token: str) -> int:
    low, high = RANGES[field]
    if field == "month" and token in MONTHS:
        return MONTHS.index(token) + 1
    if field == "day-of-week" and token in DAYS:
        return DAYS.index(token) + 1
    if not token.isdigit():
        names = {"month": " or JAN-DEC", "day-of-week": " or SUN-SAT"}.get(field, "")
        raise _error(text, field, f"{token!r} is not a number {low}-{high}{names}")
    number = int(token)
    if not low <= number <= high:
        raise _error(text, field, f"{number} is out of range ({low}-{high})")
    return number


def _unix_day(text: str, token: str) -> int:
    return _number(text, "day-of-week", token) - 1  # AWS SUN=1 -> Unix SUN=0


def _error(text: str, field: str, problem: str) -> InvalidInput:
    where = "" if field == "expression" else f"{field}: "
    details = {} if field == "expression" else {"part": field}
    return InvalidInput(
        f"schedule expression {text!r}: {where}{problem}", field="expression", **details
    )
