"""Fraud scoring: a payment posted over HTTP becomes a ``payment.created`` event; a function
scores it with the scikit-learn model `train.py` saved beside this file, records the score,
and publishes ``payment.flagged`` when it is over the threshold; a second function holds the
flagged payments for review. See README.md beside it for the commands.

    POST /payments ──> payment.created ──> score-payment ──> scores table
                                              └──> payment.flagged ──> hold-payment ──> held table
    GET /payments/{id}   its score, and whether it is held

The model is loaded by the scorer's ``init`` hook, once per sandbox, into ``ctx.state``: the
first invocation on a sandbox is a cold start that pays for it (its record's ``init_ms``),
the ones after it reuse the loaded model.
"""

from pathlib import Path

from fraud_features import features, problem

import squall

app = squall.App("fraud")
app.table("scores", partition_key="id")
app.table("held", partition_key="id")

MODEL = Path(__file__).with_name("model.joblib")
THRESHOLD = 0.8  # a payment scored at or above this is flagged


def refuse(status: int, field: str, message: str) -> squall.Response:
    return squall.Response({"error": {"field": field, "message": message}}, status=status)


def load_model(ctx):
    """Runs once per sandbox: its result is every later invocation's ``ctx.state``.

    joblib, scikit-learn, numpy and scipy are imported here rather than at the top, so the
    zygote every sandbox is forked from stays small and free of BLAS threads; the cost is
    paid once per sandbox, as the cold start's ``init_ms``.
    """
    import joblib

    if not MODEL.exists():
        raise FileNotFoundError(f"{MODEL} is missing: run train.py beside the app first")
    return {"model": joblib.load(MODEL)}


@app.http("POST /payments", permissions=["publish:default"])
def create_payment(request, ctx):
    """Checks the payment's fields and publishes payment.created; scoring is asynchronous."""
    try:
        payment = request.json()
    except ValueError:
        return refuse(400, "payment", "the body must be a JSON object")
    wrong = problem(payment)
    if wrong is not None:
        return refuse(400, *wrong)
    ctx.publish("payment.created", payment, subject=payment["id"])
    return squall.Response({"id": payment["id"], "status": "received"}, status=202)


@app.on("payment.created", name="score-payment", init=load_model, concurrency=1,
        memory_mb=1024, env={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
        permissions=["table:scores", "publish:default"])
def score_payment(event, ctx):
    """The model's fraud probability for the payment; over the threshold, payment.flagged."""
    payment = event["data"]
    model = ctx.state["model"]
    score = float(model.predict_proba([features(payment)])[0][1])
    flagged = score >= THRESHOLD
    ctx.tables["scores"].put({"id": payment["id"], "score": score, "flagged": flagged,
                              "payment": payment})
    if flagged:
        ctx.publish("payment.flagged", {"id": payment["id"], "score": score,
                                        "amount": payment["amount"]}, subject=payment["id"])
    return {"id": payment["id"], "score": score, "flagged": flagged}


@app.on("payment.flagged", name="hold-payment", permissions=["table:held"])
def hold_payment(event, ctx):
    """Holds a flagged payment for review (the table stands in for a case queue)."""
    ctx.tables["held"].put({**event["data"], "status": "held", "event": event["id"]})


@app.http("GET /payments/{id}", permissions=["table.read:scores", "table.read:held"])
def show_payment(request, ctx):
    payment_id = request.path_params["id"]
    scored = ctx.tables["scores"].get({"id": payment_id})
    if scored is None:
        return refuse(404, "id", f"payment {payment_id!r} has not been scored (yet)")
    return {**scored, "held": ctx.tables["held"].get({"id": payment_id}) is not None}
