"""Telemetry: devices post readings over HTTP, a stream keeps them in order per device, and a
stream trigger summarizes them batch by batch; a malformed reading is isolated and reported.

    squall up examples/telemetry/app.py
    curl -X POST localhost:8787/readings -d '{"device": "d-1", "celsius": 21.5}'
    squall streams show readings
    squall streams read readings --shard 0
"""

import squall

app = squall.App("telemetry")
app.stream_resource("readings", shards=2, retention_s=86400)


@app.http("POST /readings", permissions=["put:readings"])
def post_reading(request, ctx):
    """Append a reading; its device is the partition key, so each device's stay in order."""
    reading = request.json()
    put = ctx.put_record("readings", reading, partition_key=str(reading.get("device", "")))
    return squall.Response(put, status=202)


@app.stream("readings", batch_size=50, batch_window_s=0.5, starting_position="trim_horizon",
            max_retries=1, bisect_on_error=True, on_failure="quarantine")
def summarize(event, ctx):
    """The hottest reading of each device in the batch; a reading without a number fails."""
    hottest: dict[str, float] = {}
    for record in event["records"]:
        reading = record["data"]
        celsius = float(reading["celsius"])  # a malformed reading raises here
        device = reading["device"]
        hottest[device] = max(celsius, hottest.get(device, celsius))
    ctx.logger.info("shard %s: %d readings", event["records"][0]["shard"], len(event["records"]))
    return hottest


@app.function()
def quarantine(event, ctx):
    """Told which reading could not be summarized: its shard, sequence and the error."""
    info = event["streamBatchInfo"]
    ctx.logger.warning(
        "reading %s/%s skipped: %s", info["shard"], info["startSequence"], event["error"]["message"]
    )
    return {"shard": info["shard"], "sequence": info["startSequence"]}
