def visit(request, ctx):
    page = request.path_params["page"]
    ctx.tables["visits"].update({"page": page}, add={"count": 1})
    ctx.publish("page.visited", {"page": page}, subject=page)
    return {"page": page}


def thank(event, ctx):
    ctx.send("thanks", {"page": event["data"]["page"]})


def send_thanks(messages, ctx):
    for message in messages:
        print("thank you for visiting", message["body"]["page"])


def first_visit(event, ctx):
    for change in event["records"]:
        print("first visit of", change["keys"]["page"])


def hourly(event, ctx):
    print("tick", event["time"])
