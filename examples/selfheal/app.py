"""Self-healing: an alert on the error rate of a function turns off the feature flag that
broke it, opens an incident and pages the on-call; when the errors stop, the incident closes.

    GET /recommendations/{user} ──> recommend (new-ranker flag on: a bad release, it fails)
    alert recommend-errors (error rate > 20% over 10 s) ──> squall.alert.fired
        ──> remediate: flag off, incident opened ──> incident.opened ──> page-oncall ──> pages
    squall.alert.resolved ──> close-incident: incident resolved ──> incident.resolved

The flag is read on every request, so turning it off heals the function at once, without a
deploy; the alert resolves when the window holds no more failures than the threshold.
"""

import squall

app = squall.App("selfheal")

app.table("flags", partition_key="name")
app.table("incidents", partition_key="alert", sort_key="opened", key_types={"opened": "N"})
app.table("pages", partition_key="id")  # stands in for the pager

ALERT = "recommend-errors"
FLAG = "new-ranker"
app.alert(ALERT, metric="error_rate", threshold=0.2, window="10s", function="recommend")

CATALOGUE = ["tea", "coffee", "cocoa", "matcha", "chai"]


def stable_ranker(user: str) -> list[str]:
    return sorted(CATALOGUE, key=lambda item: (sum(map(ord, user + item)) % 7, item))[:3]


def new_ranker(user: str) -> list[str]:
    # The bad release: a three-letter user name divides by zero.
    boost = 1 / (len(user) - 3)
    return sorted(CATALOGUE, key=lambda item: (len(item) * boost, item))[:3]


@app.http("PUT /flags/{name}", permissions=["table:flags"])
def set_flag(request, ctx):
    """Turns a feature flag on or off."""
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
        return squall.Response(
            {"error": {"field": "enabled", "message": "enabled must be true or false"}},
            status=400,
        )
    return ctx.tables["flags"].put({"name": request.path_params["name"],
                                    "enabled": body["enabled"], "changed_by": "api"})


@app.http("GET /flags/{name}", permissions=["table.read:flags"])
def get_flag(request, ctx):
    flag = ctx.tables["flags"].get({"name": request.path_params["name"]})
    return flag or {"name": request.path_params["name"], "enabled": False}


@app.http("GET /recommendations/{user}", name="recommend", permissions=["table.read:flags"])
def recommend(request, ctx):
    """Three products for a user, ranked by the new ranker when its flag is on."""
    user = request.path_params["user"]
    flag = ctx.tables["flags"].get({"name": FLAG})
    if flag is not None and flag["enabled"]:
        return {"user": user, "items": new_ranker(user), "ranker": FLAG}
    return {"user": user, "items": stable_ranker(user), "ranker": "stable"}


@app.on("squall.alert.fired", pattern={"data": {"alert": [ALERT]}}, name="remediate",
        permissions=["table:flags", "table:incidents", "publish:default"])
def remediate(event, ctx):
    """Turns the flag off and opens an incident, in one commit with this invocation."""
    alert = event["data"]
    ctx.tables["flags"].put({"name": FLAG, "enabled": False, "changed_by": "remediate"})
    incident = {
        "alert": alert["alert"],
        "opened": alert["at"],
        "status": "open",
        "error_rate": alert["value"],
        "action": f"turned off feature flag {FLAG!r}",
    }
    ctx.tables["incidents"].put(incident, if_not_exists=True)
    ctx.publish("incident.opened", incident, subject=alert["alert"])


@app.on("incident.opened", name="page-oncall", permissions=["table:pages"])
def page_oncall(event, ctx):
    incident = event["data"]
    ctx.tables["pages"].put({
        "id": f"{incident['alert']}-{incident['opened']}",
        "text": f"{incident['alert']}: error rate {incident['error_rate']:.0%};"
                f" {incident['action']}",
    })


@app.on("squall.alert.resolved", pattern={"data": {"alert": [ALERT]}}, name="close-incident",
        permissions=["table:incidents", "publish:default"])
def close_incident(event, ctx):
    """Resolves the alert's open incident (the latest one)."""
    alert = event["data"]
    page = ctx.tables["incidents"].query(alert["alert"], descending=True, limit=1)
    for incident in page["items"]:
        if incident["status"] == "open":
            key = {"alert": incident["alert"], "opened": incident["opened"]}
            closed = ctx.tables["incidents"].update(
                key, set={"status": "resolved", "resolved": alert["at"]}
            )
            ctx.publish("incident.resolved", closed, subject=alert["alert"])


@app.http("GET /incidents", permissions=["table.read:incidents"])
def incidents(request, ctx):
    """Every incident of the alert, newest first."""
    return ctx.tables["incidents"].query(ALERT, descending=True)["items"]
