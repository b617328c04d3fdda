import squall

app = squall.App("greetings")
app.table("greetings", partition_key="name")


@app.http("POST /greet/{name}", permissions=["publish:default"])
def greet(request, ctx):
    """Accepts a greeting and hands it on as an event."""
    name = request.path_params["name"]
    ctx.publish("greeting.requested", {"name": name}, subject=name)
    return squall.Response({"accepted": name}, status=202)


@app.on("greeting.requested", permissions=["table:greetings"])
def write_greeting(event, ctx):
    """Runs for every greeting.requested event: retried, dead-lettered, at least once."""
    name = event["data"]["name"]
    ctx.logger.info("greeting %s", name)
    ctx.tables["greetings"].put({"name": name, "text": f"Hello, {name}!"})


@app.http("GET /greetings/{name}", permissions=["table.read:greetings"])
def read_greeting(request, ctx):
    greeting = ctx.tables["greetings"].get({"name": request.path_params["name"]})
    if greeting is None:
        return squall.Response({"error": {"message": "no greeting yet"}}, status=404)
    return {"text": greeting["text"]}
