"""Orders through a FIFO queue: an HTTP route queues each order in its customer's group, a
queue trigger fulfils them in order, and orders it cannot fulfil end in a dead-letter queue.

    curl -X POST localhost:8787/orders -d '{"id": 1, "customer": "ada", "qty": 2}'
    squall queues ls
    squall queues redrive orders-dlq.fifo
"""

import squall

app = squall.App("orders")

app.queue_resource("orders-dlq.fifo", fifo=True)
app.queue_resource(
    "orders.fifo",
    fifo=True,
    content_based_dedup=True,  # the same order posted twice within 5 minutes is queued once
    visibility_timeout_s=2,
    max_receive=2,
    dead_letter="orders-dlq.fifo",
)


@app.http("POST /orders", permissions=["send:orders.fifo"])
def place_order(request, ctx):
    """Queues the order in its customer's group; answers before it is fulfilled."""
    order = request.json()
    message_id = ctx.send("orders.fifo", order, group_id=str(order["customer"]))
    return squall.Response({"queued": message_id}, status=202)


@app.queue("orders.fifo", batch_size=10, timeout_s=2)
def fulfil(messages, ctx):
    """Fulfils a batch; an order of no items fails alone and is received again."""
    failed = []
    for message in messages:
        order = message["body"]
        if order["qty"] <= 0:
            failed.append(message["id"])
            continue
        print(f"fulfilled order {order['id']} of {order['customer']}")
    return {"failed": failed}
