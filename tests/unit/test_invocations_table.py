"""``squall invocations`` renders a cold start's init time, and a dash for warm ones."""

from __future__ import annotations

from rich.console import Console

from squall.cli.render import invocations_table


def rendered(invocations: list[dict[str, object]]) -> list[str]:
    console = Console(width=160, record=True)
    console.print(invocations_table(invocations))
    return console.export_text().splitlines()


def row(invocation_id: str, *, cold: bool | None, init_ms: float | None) -> dict[str, object]:
    return {"id": invocation_id, "function": "score", "status": "succeeded", "trigger": "event",
            "cold": cold, "init_ms": init_ms, "duration_ms": 5.25, "created_at": 1796169000.0}


def test_the_cold_start_shows_its_init_time_and_the_warm_ones_a_dash() -> None:
    lines = rendered([row("warm-1", cold=False, init_ms=None), row("cold-1", cold=True,
                                                                    init_ms=3811.66)])
    header = next(line for line in lines if "function" in line)
    assert header.split()[4:7] == ["cold", "init", "duration"]
    cold = next(line for line in lines if "cold-1" in line).split()
    warm = next(line for line in lines if "warm-1" in line).split()
    assert cold[4:8] == ["yes", "3811.7", "ms", "5.2"]
    assert warm[4:7] == ["no", "-", "5.2"]


def test_a_record_that_never_ran_shows_dashes() -> None:
    [line] = [line for line in rendered([row("queued", cold=None, init_ms=None)])
              if "queued" in line]
    assert line.split()[4:6] == ["-", "-"]
