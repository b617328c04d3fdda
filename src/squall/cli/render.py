"""Human output: Rich tables and log lines built from the admin API's JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

_LEVEL_STYLE = {"debug": "dim", "warning": "yellow", "error": "red", "critical": "bold red"}
_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "dead_lettered": "bold red",
    "retrying": "yellow",
}


def clock(epoch: float | None, *, date: bool = False) -> str:
    if epoch is None:
        return "-"
    moment = datetime.fromtimestamp(epoch)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S.%f")[: 19 if date else 12]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _yes_no(value: object) -> str:
    return "-" if value is None else ("yes" if value else "no")


def functions_table(functions: list[dict[str, Any]]) -> Table:
    table = Table(
        "name", "memory", "timeout", "concurrency", "retries", "warm", "busy", box=box.SIMPLE_HEAD
    )
    for fn in functions:
        stats = fn.get("stats") or {}
        table.add_row(
            escape(fn["name"]),
            f"{fn['memory_mb']} MB",
            f"{fn['timeout_s']} s",
            str(fn["concurrency"]),
            str(fn["retries"]),
            str(stats.get("warm", 0)),
            str(stats.get("busy", 0)),
        )
    return table


def invocations_table(invocations: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    for name in ("id", "function", "status", "trigger", "cold", "init", "duration", "created"):
        # Ids and statuses are for copying and scanning; let free text wrap instead.
        table.add_column(name, no_wrap=name in ("id", "status", "init", "duration", "created"))
    for inv in invocations:
        status = str(inv["status"])
        style = _STATUS_STYLE.get(status, "")
        table.add_row(
            inv["id"],
            escape(inv["function"]),
            f"[{style}]{status}[/]" if style else status,
            str(inv.get("trigger", "")),
            _yes_no(inv.get("cold")),
            _ms(inv.get("init_ms")) if inv.get("cold") else "-",  # only a cold start has one
            _ms(inv.get("duration_ms")),
            clock(inv.get("created_at"), date=True)[5:],
        )
    return table


def invocation_detail(inv: dict[str, Any]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("id", inv["id"]),
        ("function", inv["function"]),
        ("status", inv["status"]),
        ("trigger", inv.get("trigger")),
        ("attempt", inv.get("attempt")),
        ("created", clock(inv.get("created_at"), date=True)),
        ("duration", _ms(inv.get("duration_ms"))),
        ("cold start", _yes_no(inv.get("cold"))),
        ("init", _ms(inv.get("init_ms"))),
        ("peak memory", f"{inv['peak_rss_kb'] // 1024} MB" if inv.get("peak_rss_kb") else "-"),
    ]
    if "result" in inv:
        rows.append(("result", json.dumps(inv["result"], indent=2)))
    error = inv.get("error")
    if error:
        rows.append(("error", f"{error.get('type')}: {error.get('message')}"))
        if error.get("traceback"):
            rows.append(("traceback", str(error["traceback"]).rstrip()))
    for key, value in rows:
        table.add_row(key, escape(str(value)))
    return table


def log_line(row: dict[str, Any], *, with_source: bool = True) -> str:
    """One log row as Rich markup; ``with_source`` adds the function and invocation id."""
    level = str(row.get("level", "info")).lower()
    style = _LEVEL_STYLE.get(level, "")
    tag = f"{level.upper():<7}"
    parts = [f"[dim]{clock(row.get('time'))}[/]", f"[{style}]{tag}[/]" if style else tag]
    if with_source:
        parts.append(f"[cyan]{escape(str(row.get('function', '')))}[/]")
        parts.append(f"[dim]{str(row.get('invocation_id', ''))[:12]}[/]")
    parts.append(escape(str(row.get("message", ""))))
    fields = row.get("fields")
    if isinstance(fields, dict) and fields:
        pairs = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
        parts.append(f"[dim]{escape(pairs)}[/]")
    return " ".join(parts)


def dead_letters_table(letters: list[dict[str, Any]]) -> Table:
    table = Table(
        "id", "function", "invocation", "attempts", "failed", "error", box=box.SIMPLE_HEAD
    )
    for letter in letters:
        error = letter.get("error") or {}
        table.add_row(
            letter["id"],
            escape(letter["function"]),
            letter["invocation_id"],
            str(letter.get("attempts", "")),
            clock(letter.get("failed_at"), date=True),
            escape(f"{error.get('type', '')}: {error.get('message', '')}"),
        )
    return table
