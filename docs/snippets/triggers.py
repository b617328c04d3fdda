import squall

app = squall.App("triggers")
app.table("visits", partition_key="page", stream="new_and_old")
app.queue_resource("thanks", visibility_timeout_s=10, max_receive=3, dead_letter="thanks-dlq")
app.queue_resource("thanks-dlq")


@app.http("POST /visit/{page}", permissions=["table:visits", "publish:default"])
def visit(request, ctx):  # HTTP: synchronous, the caller waits for the answer
    page = request.path_params["page"]
    ctx.tables["visits"].update({"page": page}, add={"count": 1})
    ctx.publish("page.visited", {"page": page}, subject=page)
    return {"page": page}


@app.on("page.visited", permissions=["send:thanks"])
def thank(event, ctx):  # an event: asynchronous, retried, at least once
    ctx.send("thanks", {"page": event["data"]["page"]})


@app.queue("thanks", batch_size=10)
def send_thanks(messages, ctx):  # a queue: batches; failed messages are received again
    for message in messages:
        print("thank you for visiting", message["body"]["page"])


@app.on_change("visits", pattern={"eventName": ["INSERT"]})
def first_visit(event, ctx):  # a table's change stream: ordered per key
    for change in event["records"]:
        print("first visit of", change["keys"]["page"])


@app.schedule("rate(1 hour)")
def hourly(event, ctx):  # a schedule: one invocation per tick, even across restarts
    print("tick", event["time"])
