"""The e-commerce pipeline: an HTTP order is validated, recorded, confirmed by email, deducted
from stock, shipped and notified by SMS — each step a function, joined by events, a table's
change stream and a queue. `make run` serves it; see README.md beside it for the commands.

    POST /orders ──> order-validator ──> order.validated ──┬─> record-order ──> orders table
                     (stock, payment)                      └─> queue-confirmation ──> emails
    orders table INSERT ──> deduct-inventory ──> inventory.updated ──> create-shipment
    emails queue ──> send-email ──> outbox          shipment.created ──> notify-customer ──> outbox

Every write a function makes commits with its invocation's success, so a step that fails and
is retried never leaves half of its work behind, and the stock is deducted exactly once per
order.

The same fulfilment as one durable workflow with a saga: `POST /checkout` starts
`fulfil-order`, which reserves the stock, charges the card, ships and sends the SMS as
checkpointed steps; when a step fails for good, what the earlier steps did is undone, last
first (the card refunded, the stock released), and the run ends `compensated`.

    POST /checkout ──> fulfil-order: reserve stock ─> charge card ─> ship ─> SMS
                                      (release)      (refund)    ── undone, last first, on failure
"""

import hashlib

import squall

app = squall.App("orders")

app.table("stock", partition_key="sku")
app.table("orders", partition_key="id", stream="new_and_old")
app.table("shipments", partition_key="order_id")
app.table("outbox", partition_key="id")  # the "emails" and "SMS" the shop sends
app.table("checkouts", partition_key="id")  # orders of the workflow version, and their state
app.table("payments", partition_key="order_id")
app.queue_resource("emails", visibility_timeout_s=10, max_receive=3, dead_letter="emails-dlq")
app.queue_resource("emails-dlq")

DECLINED_CARDS = ("4000000000000002",)  # the test card a payment provider always declines
SHIPS_TO = ("GB", "FR", "DE", "US")  # the carrier's countries: anywhere else, shipping fails


def refuse(status: int, field: str, message: str) -> squall.Response:
    return squall.Response({"error": {"field": field, "message": message}}, status=status)


@app.http("PUT /stock/{sku}", permissions=["table:stock"])
def set_stock(request, ctx):
    """Sets how many of a product are in stock."""
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("quantity"), int):
        return refuse(400, "quantity", "quantity must be an integer")
    return ctx.tables["stock"].put({"sku": request.path_params["sku"], **body})


def shape_problem(order):
    """A 400 for an order that is not an id and a list of items, or None."""
    if not isinstance(order, dict) or not isinstance(order.get("id"), str):
        return refuse(400, "id", "an order needs a string id")
    items = order.get("items")
    if not isinstance(items, list) or not items:
        return refuse(400, "items", "an order needs at least one item")
    for index, item in enumerate(items):
        if not isinstance(item.get("sku"), str) or not isinstance(item.get("qty"), int):
            return refuse(400, f"items[{index}]", "an item is a sku and an integer qty")
    return None


@app.http("POST /orders", name="order-validator", permissions=["table.read:stock",
                                                               "publish:default"])
def validate_order(request, ctx):
    """Checks the order's shape, its stock and its payment; publishes order.validated."""
    order = request.json()
    problem = shape_problem(order)
    if problem is not None:
        return problem
    items = order["items"]
    for index, item in enumerate(items):
        stock = ctx.tables["stock"].get({"sku": item["sku"]})
        if stock is None or stock["quantity"] < item["qty"]:
            return refuse(409, f"items[{index}].qty", f"not enough {item['sku']} in stock")
    card = str(order.get("payment", {}).get("card", ""))
    if len(card) < 12 or card in DECLINED_CARDS:
        return refuse(402, "payment.card", "the payment was declined")
    ctx.publish("order.validated", {
        "id": order["id"],
        "customer": order.get("customer", {}),
        "items": items,
    }, subject=order["id"])
    return squall.Response({"id": order["id"], "status": "validated"}, status=202)


@app.on("order.validated", name="record-order", permissions=["table:orders"])
def record_order(event, ctx):
    """Writes the order; its INSERT in the change stream starts the fulfilment."""
    order = event["data"]
    ctx.tables["orders"].put({**order, "status": "validated"}, if_not_exists=True)


@app.on("order.validated", name="queue-confirmation", permissions=["send:emails"])
def queue_confirmation(event, ctx):
    order = event["data"]
    ctx.send("emails", {"order": order["id"], "to": order["customer"].get("email")})


@app.queue("emails", name="send-email", permissions=["table:outbox"])
def send_email(messages, ctx):
    """Sends confirmations; the outbox stands in for the mail server."""
    for message in messages:
        email = message["body"]
        ctx.tables["outbox"].put({
            "id": f"email-{email['order']}",
            "channel": "email",
            "to": email["to"],
            "text": f"Thank you for order {email['order']}.",
        })


@app.on_change("orders", pattern={"eventName": ["INSERT"]}, name="deduct-inventory",
               permissions=["table:stock", "publish:default"])
def deduct_inventory(event, ctx):
    """Takes each new order's items from stock, all or none, and says so."""
    for change in event["records"]:
        order = change["new"]
        ctx.tables.transact([
            {"op": "update", "table": "stock", "key": {"sku": item["sku"]},
             "add": {"quantity": -item["qty"]}, "condition": {"quantity": {"gte": item["qty"]}}}
            for item in order["items"]
        ])
        ctx.publish("inventory.updated", {"order": order["id"], "items": order["items"]},
                    subject=order["id"])


@app.on("inventory.updated", name="create-shipment",
        permissions=["table:shipments", "table:orders", "publish:default"])
def create_shipment(event, ctx):
    order_id = event["data"]["order"]
    tracking = "TRK-" + hashlib.sha256(order_id.encode()).hexdigest()[:10].upper()
    ctx.tables["shipments"].put({"order_id": order_id, "tracking": tracking})
    order = ctx.tables["orders"].update({"id": order_id}, set={"status": "shipped",
                                                                "tracking": tracking})
    ctx.publish("shipment.created", {"order": order_id, "tracking": tracking,
                                     "phone": order.get("customer", {}).get("phone")},
                subject=order_id)


@app.on("shipment.created", name="notify-customer", permissions=["table:outbox"])
def notify_customer(event, ctx):
    """Sends the SMS; the outbox stands in for the SMS gateway."""
    shipment = event["data"]
    ctx.tables["outbox"].put({
        "id": f"sms-{shipment['order']}",
        "channel": "sms",
        "to": shipment["phone"],
        "text": f"Order {shipment['order']} is on its way: {shipment['tracking']}.",
    })


@app.http("GET /orders/{id}", permissions=["table.read:orders", "table.read:outbox"])
def show_order(request, ctx):
    """The order with its status and tracking number, and what was sent about it."""
    order_id = request.path_params["id"]
    order = ctx.tables["orders"].get({"id": order_id})
    if order is None:
        return refuse(404, "id", f"order {order_id!r} does not exist")
    sent = [ctx.tables["outbox"].get({"id": f"{kind}-{order_id}"}) for kind in ("email", "sms")]
    return {"order": order, "sent": [message for message in sent if message is not None]}


# --- the same fulfilment as a workflow with a saga ------------------------------------------


@app.http("POST /checkout", name="checkout", permissions=["workflow:fulfil-order"])
def checkout(request, ctx):
    """Starts the fulfilment workflow; the order id is the run's idempotency key."""
    order = request.json()
    problem = shape_problem(order)
    if problem is not None:
        return problem
    run_id = ctx.start_workflow("fulfil-order", order, id=f"order-{order['id']}")
    return squall.Response({"id": order["id"], "run_id": run_id, "status": "accepted"},
                           status=202)


class PaymentDeclined(Exception):
    pass


class ShipmentFailed(Exception):
    pass


@app.workflow(name="fulfil-order", step_backoff_s=0.2, permissions=[
    "table:stock", "table:payments", "table:checkouts", "table:shipments", "table:outbox"])
def fulfil_order(wf, order):
    """Reserve, charge, ship, notify; on a failure, refund and release, last first."""
    tables = wf.ctx.tables

    def reserve_stock(order):
        tables.transact([
            {"op": "update", "table": "stock", "key": {"sku": item["sku"]},
             "add": {"quantity": -item["qty"]}, "condition": {"quantity": {"gte": item["qty"]}}}
            for item in order["items"]
        ])
        tables["checkouts"].put({"id": order["id"], "status": "reserved"})
        return [item["sku"] for item in order["items"]]

    def release_stock(order):
        tables.transact([
            {"op": "update", "table": "stock", "key": {"sku": item["sku"]},
             "add": {"quantity": item["qty"]}}
            for item in order["items"]
        ])
        tables["checkouts"].update({"id": order["id"]}, set={"status": "cancelled"})

    def charge_card(order):
        card = str(order.get("payment", {}).get("card", ""))
        if len(card) < 12 or card in DECLINED_CARDS:
            raise PaymentDeclined(f"card ending {card[-4:]} was declined")
        amount = sum(item["qty"] * item.get("price", 1) for item in order["items"])
        tables["payments"].put({"order_id": order["id"], "amount": amount, "status": "charged"})
        return amount

    def refund_card(order):
        tables["payments"].update({"order_id": order["id"]}, set={"status": "refunded"})

    def ship(order):
        country = order.get("address", {}).get("country", "GB")
        if country not in SHIPS_TO:
            raise ShipmentFailed(f"the carrier does not ship to {country}")
        tracking = "TRK-" + hashlib.sha256(order["id"].encode()).hexdigest()[:10].upper()
        tables["shipments"].put({"order_id": order["id"], "tracking": tracking})
        tables["checkouts"].update({"id": order["id"]}, set={"status": "shipped",
                                                             "tracking": tracking})
        return tracking

    def send_sms(order, tracking):
        tables["outbox"].put({
            "id": f"sms-{order['id']}",
            "channel": "sms",
            "to": order.get("customer", {}).get("phone"),
            "text": f"Order {order['id']} is on its way: {tracking}.",
        })

    wf.step(reserve_stock, order, retries=0)
    wf.compensate(release_stock, order)
    amount = wf.step(charge_card, order, retries=0)
    wf.compensate(refund_card, order)
    tracking = wf.step(ship, order, retries=1)
    wf.step(send_sms, order, tracking)
    return {"tracking": tracking, "charged": amount}


@app.http("GET /checkout/{id}", permissions=["table.read:checkouts", "table.read:payments"])
def show_checkout(request, ctx):
    """A checkout's state and its payment."""
    order_id = request.path_params["id"]
    checkout = ctx.tables["checkouts"].get({"id": order_id})
    if checkout is None:
        return refuse(404, "id", f"checkout {order_id!r} does not exist")
    return {"checkout": checkout, "payment": ctx.tables["payments"].get({"order_id": order_id})}
