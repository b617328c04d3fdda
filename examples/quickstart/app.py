"""The quickstart app: `make run` serves it.

    squall invoke hello --data '{"name": "Ada"}'
    squall invoke slow-square --data '{"n": 7}' --async
"""

import time

import squall

app = squall.App("quickstart")


def load_greetings(ctx: squall.Context) -> dict[str, str]:
    """Runs once per sandbox: the place for loading models or opening pools."""
    return {"en": "Hello", "fr": "Bonjour", "de": "Hallo"}


@app.function(init=load_greetings, memory_mb=128, timeout_s=10)
def hello(event, ctx):
    """Greets by name."""
    event = event or {}
    greeting = ctx.state.get(event.get("lang", "en"), "Hello")
    ctx.logger.info("greeting %s", event.get("name", "world"))
    name = event.get("name", "world")
    return {"message": f"{greeting}, {name}!", "invocation": ctx.invocation_id}


@app.function(retries=2, on_success="record-result", on_failure="record-result")
def slow_square(event, ctx):
    """Squares a number after a pause; fails on negative numbers (and is retried)."""
    n = event["n"]
    if n < 0:
        raise ValueError(f"cannot square a negative number: {n}")
    time.sleep(min(1.0, abs(n) / 100))
    return {"square": n * n}


@app.function(name="record-result")
def record_result(event, ctx):
    """Destination for slow-square: logs how each async invocation ended."""
    context = event["requestContext"]
    print(f"{context['functionName']} {context['requestId']}: {context['condition']}")
    return context["condition"]
