"""The shop's code; squall.yaml beside it says which function runs which handler and when."""

import squall


def place_order(request, ctx):
    """Records an order and announces it."""
    order = request.json()
    if not isinstance(order, dict) or not isinstance(order.get("id"), str):
        return squall.Response({"error": {"field": "id", "message": "a string id"}}, status=400)
    total = order.get("total")
    if isinstance(total, bool) or not isinstance(total, int | float) or total <= 0:
        return squall.Response(
            {"error": {"field": "total", "message": "a positive number"}}, status=400
        )
    ctx.tables["orders"].put({"id": order["id"], "total": total, "email": order.get("email")})
    ctx.publish("order.placed", {"id": order["id"], "total": total, "email": order.get("email")})
    return squall.Response({"id": order["id"]}, status=202)


def get_order(request, ctx):
    """Shows an order and whether its confirmation was sent."""
    order_id = request.path_params["id"]
    order = ctx.tables["orders"].get({"id": order_id})
    if order is None:
        return squall.Response({"error": {"message": "no such order"}}, status=404)
    return {**order, "confirmed": ctx.tables["outbox"].get({"id": order_id}) is not None}


def confirm_order(event, ctx):
    """Queues the confirmation email of a placed order."""
    order = event["data"]
    ctx.send("emails", {"to": order.get("email"), "order": order["id"]})


def send_email(messages, ctx):
    """Sends the confirmations (here: writes them to the outbox table)."""
    for message in messages:
        body = message["body"]
        ctx.tables["outbox"].put({"id": body["order"], "to": body["to"]})
        ctx.logger.info("confirmation of %s sent to %s", body["order"], body["to"])


def count_orders(event, ctx):
    """Logs how many orders there are."""
    count = len(ctx.tables["orders"].scan()["items"])
    ctx.logger.info("%d orders", count)
