"""The orders pipeline as an Amazon States Language state machine (`fulfil.asl.json`):
each Task is a function of this app, and every execution is a durable workflow run.

    Validate ─> Reserve ─> Charge ─> Dispatch (Parallel: Confirm ‖ Pack, a Map of the items,
                                              2 at a time) ─> Ship ─> Summary
    InvalidOrder / OutOfStock ─> Rejected      CardDeclined ─> Release ─> Rejected

`make run APP=examples/orders-asl/app.py` serves it; see README.md beside it.
"""

import hashlib
from pathlib import Path

import squall

app = squall.App("orders-asl")

app.table("stock", partition_key="sku")
app.table("charges", partition_key="order")
app.table("parcels", partition_key="id")
app.table("shipments", partition_key="order")
app.table("outbox", partition_key="id")  # the "emails" the shop sends

DECLINED_CARDS = ("4000000000000002",)


class InvalidOrder(Exception):
    pass


class OutOfStock(Exception):
    pass


class CardDeclined(Exception):
    pass


@app.http("PUT /stock/{sku}", permissions=["table:stock"])
def set_stock(request, ctx):
    """Sets how many of a product are in stock."""
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("quantity"), int):
        return squall.Response({"error": {"field": "quantity",
                                          "message": "quantity must be an integer"}}, status=400)
    return ctx.tables["stock"].put({"sku": request.path_params["sku"], **body})


@app.function(name="validate-order")
def validate_order(order, ctx):
    """Fails with InvalidOrder naming what is wrong."""
    if not isinstance(order.get("id"), str):
        raise InvalidOrder("an order needs a string id")
    items = order.get("items")
    if not isinstance(items, list) or not items:
        raise InvalidOrder("an order needs at least one item")
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("sku"), str) or not (
                isinstance(item.get("qty"), int) and item["qty"] > 0):
            raise InvalidOrder(f"items[{index}] must be a sku and a positive integer qty")
    if not isinstance(order.get("total"), int | float):
        raise InvalidOrder("an order needs a numeric total")


def quantities(items):
    """How many of each sku (a transaction touches each item once)."""
    totals = {}
    for item in items:
        totals[item["sku"]] = totals.get(item["sku"], 0) + item["qty"]
    return totals


@app.function(name="reserve-stock", permissions=["table:stock"])
def reserve_stock(order, ctx):
    """Takes the items from stock, all or none."""
    try:
        ctx.tables.transact([
            {"op": "update", "table": "stock", "key": {"sku": sku}, "add": {"quantity": -qty},
             "condition": {"quantity": {"gte": qty}}}
            for sku, qty in quantities(order["items"]).items()
        ])
    except squall.SquallError as exc:
        raise OutOfStock(f"not enough stock for order {order['id']}") from exc


@app.function(name="release-stock", permissions=["table:stock"])
def release_stock(order, ctx):
    """Gives the items back (the payment failed)."""
    ctx.tables.transact([
        {"op": "update", "table": "stock", "key": {"sku": sku}, "add": {"quantity": qty}}
        for sku, qty in quantities(order["items"]).items()
    ])


@app.function(name="charge-card", permissions=["table:charges"])
def charge_card(payment, ctx):
    """The payment provider: a declined card is CardDeclined."""
    if str(payment.get("card")) in DECLINED_CARDS:
        raise CardDeclined(f"card ending {str(payment['card'])[-4:]} was declined")
    charge = {"order": payment["id"], "amount": payment["total"]}
    ctx.tables["charges"].put(charge, if_not_exists=True)
    return charge


@app.function(name="send-email", permissions=["table:outbox"])
def send_email(email, ctx):
    ctx.tables["outbox"].put({"id": email["id"], "to": email["to"], "text": email["text"]})
    return email["id"]


@app.function(name="pack-item", permissions=["table:parcels"])
def pack_item(item, ctx):
    parcel = {"id": f"{item['order']}-{item['n']}", "sku": item["sku"], "qty": item["qty"]}
    ctx.tables["parcels"].put(parcel)
    return parcel["id"]


@app.function(name="create-shipment", permissions=["table:shipments"])
def create_shipment(shipment, ctx):
    tracking = "TRK-" + hashlib.sha256(shipment["order"].encode()).hexdigest()[:10].upper()
    ctx.tables["shipments"].put({**shipment, "tracking": tracking})
    return {"tracking": tracking}


app.state_machine("fulfil", definition=Path(__file__).parent / "fulfil.asl.json")
