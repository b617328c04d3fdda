"""Schedule expressions: parsing, errors naming the field, and next-time arithmetic."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.engine.schedules.expressions import SECONDS_ENV, isoformat, jitter, parse
from squall.errors import InvalidInput


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def upcoming(expression: str, start: str, count: int = 4, tz: str = "UTC") -> list[str]:
    parsed = parse(expression, tz)
    times = parsed.times(ts(start), ts(start))
    return [isoformat(next(times)) for _ in range(count)]


# --- rates ---------------------------------------------------------------------------------


def test_rate_fires_every_interval_from_its_anchor() -> None:
    assert upcoming("rate(5 minutes)", "2026-03-01T00:00:00+00:00", 3) == [
        "2026-03-01T00:05:00Z",
        "2026-03-01T00:10:00Z",
        "2026-03-01T00:15:00Z",
    ]
    rate = parse("rate(1 hour)")
    anchor = ts("2026-03-01T00:00:30+00:00")
    # Strictly after: a query on a tick gives the one after it; intervals stay on the anchor.
    assert rate.next_after(anchor + 3600, anchor) == anchor + 7200
    assert rate.next_after(anchor + 3599.5, anchor) == anchor + 3600
    assert rate.next_after(anchor - 10_000, anchor) == anchor + 3600
    assert parse("rate(2 days)").rate_s == 172800


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("rate(1 minutes)", "singular unit: rate(1 minute)"),
        ("rate(5 minute)", "plural unit: rate(5 minutes)"),
        ("rate(0 minutes)", "positive whole number, got 0"),
        ("rate(-3 minutes)", "positive whole number"),
        ("rate(5 weeks)", "unit 'weeks' is unknown"),
        ("rate(30 seconds)", "unit 'seconds' is unknown"),
        ("rate(five minutes)", "write rate(value unit)"),
        ("rate(5)", "write rate(value unit)"),
    ],
)
def test_bad_rates_name_the_expression(expression: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(problem)) as caught:
        parse(expression)
    assert caught.value.field == "expression"


def test_second_rates_exist_only_when_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECONDS_ENV, "1")
    assert parse("rate(2 seconds)").rate_s == 2
    monkeypatch.delenv(SECONDS_ENV)
    with pytest.raises(InvalidInput):
        parse("rate(2 seconds)")


# --- AWS cron ------------------------------------------------------------------------------


def test_weekdays_at_nine_in_paris() -> None:
    # 2026-03-27 is a Friday; Paris moves to summer time on Sunday 29 March.
    assert upcoming(
        "cron(0 9 ? * MON-FRI *)", "2026-03-27T10:00:00+00:00", 3, tz="Europe/Paris"
    ) == ["2026-03-30T07:00:00Z", "2026-03-31T07:00:00Z", "2026-04-01T07:00:00Z"]


def test_day_of_week_counts_from_sunday_as_one() -> None:
    # AWS 2 is Monday; 2#1 the first Monday; 6L the last Friday; L alone the last day, Saturday.
    assert upcoming("cron(0 12 ? * 2 *)", "2026-12-01T00:00:00+00:00", 2) == [
        "2026-12-07T12:00:00Z",
        "2026-12-14T12:00:00Z",
    ]
    assert upcoming("cron(0 12 ? * 2#1 *)", "2026-12-01T00:00:00+00:00", 2) == [
        "2026-12-07T12:00:00Z",
        "2027-01-04T12:00:00Z",
    ]
    assert upcoming("cron(0 12 ? * MON#3 *)", "2026-12-01T00:00:00+00:00", 1) == [
        "2026-12-21T12:00:00Z"
    ]
    assert upcoming("cron(0 12 ? * 6L *)", "2026-12-01T00:00:00+00:00", 2) == [
        "2026-12-25T12:00:00Z",
        "2027-01-29T12:00:00Z",
    ]
    assert upcoming("cron(0 12 ? * L *)", "2026-12-01T00:00:00+00:00", 2) == [
        "2026-12-05T12:00:00Z",
        "2026-12-12T12:00:00Z",
    ]
    assert upcoming("cron(0 12 ? * 1,7 *)", "2026-12-01T00:00:00+00:00", 2) == [
        "2026-12-05T12:00:00Z",
        "2026-12-06T12:00:00Z",
    ]


def test_last_day_and_nearest_weekday_of_the_month() -> None:
    assert upcoming("cron(0 0 L * ? *)", "2027-01-15T00:00:00+00:00", 3) == [
        "2027-01-31T00:00:00Z",
        "2027-02-28T00:00:00Z",
        "2027-03-31T00:00:00Z",
    ]
    # 2026-08-15 is a Saturday: the nearest weekday is Friday the 14th; 2026-11-15 a Sunday.
    assert upcoming("cron(0 8 15W * ? *)", "2026-08-01T00:00:00+00:00", 4) == [
        "2026-08-14T08:00:00Z",
        "2026-09-15T08:00:00Z",
        "2026-10-15T08:00:00Z",
        "2026-11-16T08:00:00Z",
    ]


def test_year_field_and_month_names() -> None:
    assert upcoming("cron(0 0 1 JAN,JUL ? 2027-2028)", "2026-06-01T00:00:00+00:00", 4) == [
        "2027-01-01T00:00:00Z",
        "2027-07-01T00:00:00Z",
        "2028-01-01T00:00:00Z",
        "2028-07-01T00:00:00Z",
    ]
    parsed = parse("cron(0 0 1 JAN ? 2027)")
    assert parsed.next_after(ts("2027-01-02T00:00:00+00:00"), 0) is None


def test_steps_and_ranges() -> None:
    assert upcoming("cron(0/20 8-9 * * ? *)", "2026-12-01T00:00:00+00:00", 4) == [
        "2026-12-01T08:00:00Z",
        "2026-12-01T08:20:00Z",
        "2026-12-01T08:40:00Z",
        "2026-12-01T09:00:00Z",
    ]


@pytest.mark.parametrize(
    ("expression", "part", "problem"),
    [
        ("cron(0 9 * * MON *)", "day-of-month", "exactly one of day-of-month and day-of-week"),
        ("cron(0 9 ? * ? *)", "day-of-week", "exactly one of"),
        ("cron(0 9 1 * 2 *)", "day-of-month", "must be '?'"),
        ("cron(61 9 * * ? *)", "minutes", "61 is out of range"),
        ("cron(0 24 * * ? *)", "hours", "24 is out of range"),
        ("cron(0 9 32 * ? *)", "day-of-month", "32 is out of range"),
        ("cron(0 9 * 13 ? *)", "month", "13 is out of range"),
        ("cron(0 9 ? * 8 *)", "day-of-week", "8 is out of range"),
        ("cron(0 9 ? * 0 *)", "day-of-week", "0 is out of range"),
        ("cron(0 9 ? * MON#6 *)", "day-of-week", "1-5"),
        ("cron(0 9 ? * FOO *)", "day-of-week", "'FOO' is not a number"),
        ("cron(0 9 * FOO ? *)", "month", "or JAN-DEC"),
        ("cron(0 9 * * ? 1969)", "year", "out of range"),
        ("cron(0 9 10-5 * ? *)", "day-of-month", "runs backwards"),
        ("cron(0 9 1W,2 * ? *)", "day-of-month", "single day"),
        ("cron(?,0 9 * * ? *)", "minutes", "only alone"),
    ],
)
def test_aws_cron_errors_name_the_part(expression: str, part: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(problem)) as caught:
        parse(expression)
    assert caught.value.field == "expression"
    assert caught.value.details["part"] == part


def test_wrong_field_counts_and_shapes() -> None:
    with pytest.raises(InvalidInput, match="six fields"):
        parse("cron(0 9 * * ?)")
    with pytest.raises(InvalidInput, match="five-field Unix cron"):
        parse("every day")
    with pytest.raises(InvalidInput, match="empty"):
        parse("  ")
    with pytest.raises(InvalidInput, match="not valid cron"):
        parse("* * * * 9")


# --- Unix cron and zones -------------------------------------------------------------------


def test_five_field_unix_cron() -> None:
    assert upcoming("*/15 * * * *", "2026-12-01T10:05:00+00:00", 3) == [
        "2026-12-01T10:15:00Z",
        "2026-12-01T10:30:00Z",
        "2026-12-01T10:45:00Z",
    ]
    assert upcoming("0 9 * * 1", "2026-12-01T00:00:00+00:00", 1) == ["2026-12-07T09:00:00Z"]


def test_spring_forward_gap_fires_once_later_in_paris() -> None:
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist and fires at 03:30.
    assert upcoming("cron(30 2 * * ? *)", "2026-03-28T00:00:00+00:00", 3, "Europe/Paris") == [
        "2026-03-28T01:30:00Z",  # 02:30 CET
        "2026-03-29T01:30:00Z",  # 03:30 CEST
        "2026-03-30T00:30:00Z",  # 02:30 CEST
    ]
    # Every 30 minutes: nothing fires twice and nothing is left out across the gap.
    assert upcoming("*/30 * * * *", "2026-03-29T00:15:00+00:00", 4, "Europe/Paris") == [
        "2026-03-29T00:30:00Z",  # 01:30 CET
        "2026-03-29T01:00:00Z",  # 03:00 CEST
        "2026-03-29T01:30:00Z",
        "2026-03-29T02:00:00Z",
    ]


def test_fall_back_fires_an_ambiguous_time_once_in_paris() -> None:
    # 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice and fires once.
    assert upcoming("cron(30 2 * * ? *)", "2026-10-24T12:00:00+00:00", 3, "Europe/Paris") == [
        "2026-10-25T00:30:00Z",  # 02:30 CEST, the first one
        "2026-10-26T01:30:00Z",  # 02:30 CET the next day
        "2026-10-27T01:30:00Z",
    ]
    hourly = upcoming("0 * * * *", "2026-10-24T23:30:00+00:00", 4, "Europe/Paris")
    assert hourly == [
        "2026-10-25T00:00:00Z",  # 02:00 CEST
        "2026-10-25T02:00:00Z",  # 03:00 CET: 02:00 CET, a wall time already fired, is not
        "2026-10-25T03:00:00Z",
        "2026-10-25T04:00:00Z",
    ]
    # Asked from inside the repeated hour, the next tick is after it: its wall times fired.
    inside = ts("2026-10-25T01:10:00+00:00")  # 02:10 CET, the second pass
    assert isoformat(parse("*/15 * * * *", "Europe/Paris").next_after(inside, 0) or 0) == (
        "2026-10-25T02:00:00Z"  # 03:00 CET
    )


def test_new_york_changes_of_2026() -> None:
    # 8 March: 02:00 EST -> 03:00 EDT; 1 November: 02:00 EDT -> 01:00 EST.
    assert upcoming(
        "cron(30 2 ? * SUN *)", "2026-03-07T00:00:00+00:00", 2, "America/New_York"
    ) == ["2026-03-08T07:30:00Z", "2026-03-15T06:30:00Z"]
    assert upcoming(
        "cron(30 1 * * ? *)", "2026-10-31T12:00:00+00:00", 2, "America/New_York"
    ) == ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]


def test_at_fires_once_in_its_zone() -> None:
    parsed = parse("at(2026-12-01T09:00:00)", "Europe/Paris")
    assert isoformat(parsed.at) == "2026-12-01T08:00:00Z"
    assert parsed.next_after(ts("2026-11-30T00:00:00+00:00"), 0) == parsed.at
    assert parsed.next_after(parsed.at, 0) is None
    with pytest.raises(InvalidInput, match="yyyy-mm-ddThh:mm:ss"):
        parse("at(2026-12-01 09:00)")
    with pytest.raises(InvalidInput, match="month must be"):
        parse("at(2026-13-01T09:00:00)")


def test_bad_zone_names_tz() -> None:
    with pytest.raises(InvalidInput, match="IANA") as caught:
        parse("rate(5 minutes)", "Mars/Olympus")
    assert caught.value.field == "tz"


def test_jitter_is_deterministic_and_within_its_window() -> None:
    offsets = {jitter("nightly", 1_800_000_000.0 + 60 * k, 300) for k in range(50)}
    assert len(offsets) > 40  # spread out, not a constant
    assert all(0 <= offset < 300 for offset in offsets)
    assert jitter("nightly", 1_800_000_000.0, 300) == jitter("nightly", 1_800_000_000.0, 300)
    assert jitter("nightly", 1_800_000_000.0, 0) == 0


# --- properties ----------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
CRONS = [
    "*/15 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "cron(0 9 ? * MON-FRI *)",
    "cron(30 1 L * ? *)",
    "cron(0/10 2-3 ? * 1#2 *)",
    "cron(0 0 15W * ? *)",
]
START = ts("2026-01-01T00:00:00+00:00")


@settings(max_examples=60, deadline=None)
@given(
    expression=st.sampled_from(CRONS),
    tz=st.sampled_from(ZONES),
    offset=st.floats(min_value=0, max_value=366 * 86400),
)
def test_cron_times_increase_and_match_the_expression(
    expression: str, tz: str, offset: float
) -> None:
    parsed = parse(expression, tz)
    zone = ZoneInfo(tz)
    after = START + offset
    times = parsed.times(after, after)
    previous = after
    for _ in range(6):
        instant = next(times)
        assert instant > previous
        wall = datetime.fromtimestamp(instant, zone).replace(tzinfo=None)
        # Each instant is a wall time the expression names, or one a gap pushed forward.
        shifted = datetime.fromtimestamp(instant, UTC).astimezone(zone)
        if croniter.match(parsed.cron, wall):
            assert wall.second == 0
        else:
            assert shifted.dst() != datetime.fromtimestamp(instant - 7200, zone).dst()
        previous = instant


@settings(max_examples=100, deadline=None)
@given(
    value=st.integers(min_value=2, max_value=500),
    unit=st.sampled_from(["minutes", "hours", "days"]),
    anchor=st.floats(min_value=START, max_value=START + 86400),
    offset=st.floats(min_value=-86400, max_value=3 * 365 * 86400),
)
def test_rate_times_are_the_first_anchor_steps_after(
    value: int, unit: str, anchor: float, offset: float
) -> None:
    parsed = parse(f"rate({value} {unit})")
    after = anchor + offset
    first = parsed.next_after(after, anchor)
    assert first is not None and first > after and first >= anchor + parsed.rate_s
    steps = (first - anchor) / parsed.rate_s
    assert abs(steps - round(steps)) < 1e-6  # on the anchor's grid
    assert first - parsed.rate_s <= max(after, anchor) + 1e-6  # and the first one after


TRANSITIONS = [  # the changes of 2026, with a day before and after
    ("Europe/Paris", "2026-03-28T12:00:00+00:00"),
    ("Europe/Paris", "2026-10-24T12:00:00+00:00"),
    ("America/New_York", "2026-03-07T12:00:00+00:00"),
    ("America/New_York", "2026-10-31T12:00:00+00:00"),
]


def _field(spec: str, value: int) -> bool:
    """A tiny matcher for the fields drawn below, independent of croniter."""
    for part in spec.split(","):
        if part == "*" or (part.startswith("*/") and value % int(part[2:]) == 0):
            return True
        low, _, high = part.partition("-")
        if part[0].isdigit() and int(low) <= value <= int(high or low):
            return True
    return False


@settings(max_examples=40, deadline=None)
@given(
    transition=st.sampled_from(TRANSITIONS),
    minute=st.sampled_from(["0", "30", "*/20", "5,35", "*/7"]),
    hour=st.sampled_from(["*", "1", "2", "1-3", "*/2"]),
)
def test_cron_times_around_dst_match_a_minute_by_minute_walk(
    transition: tuple[str, str], minute: str, hour: str
) -> None:
    """Oracle: walk every UTC minute of two days; each matching wall time fires once, at
    its first occurrence; a matching wall time the clock skips fires as much later."""
    tz, start_text = transition
    zone = ZoneInfo(tz)
    start = ts(start_text)
    end = start + 2 * 86400

    def matches(wall: datetime) -> bool:
        return _field(minute, wall.minute) and _field(hour, wall.hour)

    expected: set[float] = set()
    seen: set[datetime] = set()
    for step in range(1, 2 * 24 * 60 + 1):
        instant = start + 60 * step
        wall = datetime.fromtimestamp(instant, zone).replace(tzinfo=None)
        if wall not in seen:  # not the second pass of a fall-back hour
            seen.add(wall)
            if matches(wall):
                expected.add(instant)
    first = datetime.fromtimestamp(start, zone).replace(tzinfo=None)
    for step in range(1, 2 * 24 * 60 + 61):  # wall times the clock skipped
        wall = first + timedelta(minutes=step)
        if wall not in seen and matches(wall):
            shifted = wall.replace(tzinfo=zone).timestamp()
            if start < shifted <= end:
                expected.add(shifted)
    produced = []
    for instant in parse(f"{minute} {hour} * * *", tz).times(start, start):
        if instant > end:
            break
        produced.append(instant)
    assert produced == sorted(expected)


def test_preview_reads_a_start_without_offset_in_the_schedules_zone() -> None:
    from squall.engine.schedules.expressions import preview

    # 08:30 in Paris is 06:30Z in summer: the next 09:00 is the same day.
    assert preview("cron(0 9 * * ? *)", "Europe/Paris", "2026-07-01T08:30:00", 2, now=0) == [
        "2026-07-01T07:00:00Z",
        "2026-07-02T07:00:00Z",
    ]
    assert preview("rate(2 hours)", "UTC", "2026-07-01T00:00:00Z", 2, now=0) == [
        "2026-07-01T02:00:00Z",
        "2026-07-01T04:00:00Z",
    ]
    assert preview("rate(2 hours)", now=ts("2026-07-01T00:00:00+00:00"), count=1) == [
        "2026-07-01T02:00:00Z"
    ]
    for count in (0, 101):
        with pytest.raises(InvalidInput) as caught:
            preview("rate(2 hours)", count=count, now=0)
        assert caught.value.field == "count"
    with pytest.raises(InvalidInput, match="years 1970-2099") as caught:
        preview("rate(2 hours)", "UTC", "2150-01-01T00:00:00Z", now=0)
    assert caught.value.field == "from"
