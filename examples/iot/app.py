"""IoT: sensors put readings onto a stream keyed by device, so each device's readings stay in
order on one shard. A stream trigger folds them, batch by batch, into per-device aggregates
and publishes ``sensor.alert`` once each time a device crosses the threshold; a rule hands
alerts to a function that records them; an hourly schedule writes a report. `load.py` beside
it simulates 1,000 devices; see README.md for the commands.

    readings stream ──> check-thresholds ──> devices table (count/min/max/mean, last, window)
      (key: device)            └──> sensor.alert ──> record-alert ──> alerts table
    rate(1 hour) ──> hourly-report ──> reports table
    GET /devices/{device}   GET /alerts[?device=]   GET /reports/latest
"""

import time
from collections import defaultdict
from datetime import UTC, datetime

import squall

app = squall.App("iot")
app.stream_resource("readings", shards=4, retention_s=86400)
app.table("devices", partition_key="device")
app.table("alerts", partition_key="device", sort_key="sequence", key_types={"sequence": "N"})
app.table("reports", partition_key="hour")

THRESHOLD = 80.0  # degrees Celsius; a reading above it is an alarm
WINDOW_S = 3600  # aggregates also keep the current clock hour's figures


def refuse(status: int, field: str, message: str) -> squall.Response:
    return squall.Response({"error": {"field": field, "message": message}}, status=status)


def new_aggregate(device: str) -> dict:
    return {"device": device, "count": 0, "min": None, "max": None, "sum": 0.0, "mean": None,
            "last": None, "last_at": None, "above": False, "crossings": 0,
            "window": {"start": None, "count": 0, "min": None, "max": None, "sum": 0.0,
                       "mean": None}}


def fold(figures: dict, celsius: float) -> None:
    """Adds one reading to count, min, max, sum and mean."""
    figures["count"] += 1
    figures["sum"] += celsius
    figures["min"] = celsius if figures["min"] is None else min(figures["min"], celsius)
    figures["max"] = celsius if figures["max"] is None else max(figures["max"], celsius)
    figures["mean"] = figures["sum"] / figures["count"]


def add_reading(aggregate: dict, celsius: float, at: float) -> bool:
    """Folds a reading in; True when it crosses the threshold upwards."""
    fold(aggregate, celsius)
    start = at - at % WINDOW_S
    if aggregate["window"]["start"] != start:
        aggregate["window"] = {"start": start, "count": 0, "min": None, "max": None,
                               "sum": 0.0, "mean": None}
    fold(aggregate["window"], celsius)
    aggregate["last"], aggregate["last_at"] = celsius, at
    crossed = celsius > THRESHOLD and not aggregate["above"]
    aggregate["above"] = celsius > THRESHOLD
    aggregate["crossings"] += int(crossed)
    return crossed


def celsius_of(record: dict) -> float | None:
    reading = record["data"]
    value = reading.get("celsius") if isinstance(reading, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@app.stream("readings", name="check-thresholds", batch_size=500, batch_window_s=0.2,
            starting_position="trim_horizon", max_retries=3,
            permissions=["table:devices", "publish:default"])
def check_thresholds(event, ctx):
    """Each device's readings of the batch, in order: aggregates, and an alert per crossing.

    A shard has one batch in flight and a device always hashes to the same shard, so no two
    invocations fold the same device at once; the writes and alerts commit with the batch.
    """
    by_device = defaultdict(list)
    for record in event["records"]:
        by_device[record["partition_key"]].append(record)
    devices = ctx.tables["devices"]
    for device, records in by_device.items():
        aggregate = devices.get({"device": device}) or new_aggregate(device)
        folded = 0
        for record in records:
            celsius = celsius_of(record)
            if celsius is None:  # one broken sensor must not hold up its whole shard
                ctx.logger.warning("%s: reading %s has no number in celsius", device,
                                   record["sequence"])
                continue
            folded += 1
            if add_reading(aggregate, celsius, record["arrival_time"]):
                ctx.publish("sensor.alert", {
                    "device": device, "celsius": celsius, "threshold": THRESHOLD,
                    "sequence": record["sequence"], "at": record["arrival_time"],
                }, subject=device)
        if folded:
            devices.put(aggregate)
    return {"readings": len(event["records"]), "devices": len(by_device)}


@app.on("sensor.alert", name="record-alert", permissions=["table:alerts"])
def record_alert(event, ctx):
    """Keyed by the crossing reading, so a redelivered alert is recorded once."""
    ctx.tables["alerts"].put(dict(event["data"]))


def everything(table) -> list[dict]:
    items, cursor = [], None
    while True:
        page = table.scan(limit=500, cursor=cursor)
        items.extend(page["items"])
        cursor = page.get("cursor")
        if cursor is None:
            return items


@app.schedule("rate(1 hour)", name="hourly-report",
              permissions=["table.read:devices", "table.read:alerts", "table:reports"])
def hourly_report(event, ctx):
    """Devices, readings, the hottest device and the last hour's alerts, as of the tick."""
    now = time.time()
    if isinstance(event, dict) and "time" in event:
        now = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
    aggregates = everything(ctx.tables["devices"])
    alerts = [a for a in everything(ctx.tables["alerts"]) if now - WINDOW_S <= a["at"] <= now]
    hottest = max(aggregates, key=lambda a: a["max"] if a["max"] is not None else float("-inf"),
                  default=None)
    report = {
        "hour": datetime.fromtimestamp(now - now % WINDOW_S, UTC).isoformat(),
        "at": now,
        "devices": len(aggregates),
        "readings": sum(a["count"] for a in aggregates),
        "above": sorted(a["device"] for a in aggregates if a["above"]),
        "hottest": None if hottest is None else {"device": hottest["device"],
                                                 "celsius": hottest["max"]},
        "alerts": len(alerts),
    }
    ctx.tables["reports"].put(report)
    return report


@app.http("GET /devices/{device}", permissions=["table.read:devices"])
def get_device(request, ctx):
    """A device's aggregate: count, min, max, mean, last value and the current hour's window."""
    device = request.path_params["device"]
    aggregate = ctx.tables["devices"].get({"device": device})
    if aggregate is None:
        return refuse(404, "device", f"no readings from device {device!r}")
    return aggregate


@app.http("GET /alerts", permissions=["table.read:alerts"])
def list_alerts(request, ctx):
    """Recorded alerts: one device's (``?device=``) in order, or all of them."""
    device = request.query.get("device")
    alerts = ctx.tables["alerts"]
    found = list(alerts.items(device)) if device else everything(alerts)
    return {"alerts": found}


@app.http("GET /reports/latest", permissions=["table.read:reports"])
def latest_report(request, ctx):
    reports = everything(ctx.tables["reports"])
    if not reports:
        return refuse(404, "hour", "no report has been written yet")
    return max(reports, key=lambda report: report["at"])
