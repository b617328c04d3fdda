"""A bank account, event-sourced, with a CQRS read side. `make run APP=examples/bank/app.py`
serves it; see README.md beside it for the commands.

    POST /accounts/{id}/open|deposit|withdraw ──> Account aggregate ──> account-<id> stream
                                                  (load, command, save at the loaded version)
    account-<id> events ──> balances projection ──> balances table ──> GET /accounts/{id}
    Withdrawn events on the bus ──> large-withdrawal ──> alerts table

Commands go to the aggregate, which folds its stream (from a snapshot every 20 events) and
appends what the command decided, expecting the version it loaded: two withdrawals racing
on one account cannot both spend the same balance; the loser answers 409. Queries read the
projection's table, rebuilt from the events with `squall projections rebuild balances`.
"""

from typing import Any, ClassVar

import squall

app = squall.App("bank")
app.table("alerts", partition_key="id")


class Account(squall.Aggregate):
    category = "account"
    snapshot_every = 20
    # Deposited v1 had no currency; every account then was in euros.
    upcasters: ClassVar[dict[tuple[str, int], squall.aggregate.Upcaster]] = {
        ("Deposited", 1): lambda data: {**data, "currency": "EUR"},
    }

    def __init__(self) -> None:
        self.opened = False
        self.owner = ""
        self.balance = 0

    def open(self, owner: str) -> None:
        if self.opened:
            raise squall.Conflict(f"account {self.id} is already open", field="id")
        self.record("Opened", {"owner": owner})

    def deposit(self, amount: int) -> None:
        self._require_open()
        self.record("Deposited", {"amount": amount, "currency": "EUR"}, schema_version=2)

    def withdraw(self, amount: int) -> None:
        self._require_open()
        if amount > self.balance:
            raise squall.Conflict(
                f"account {self.id} holds {self.balance}, less than {amount}", field="amount"
            )
        self.record("Withdrawn", {"amount": amount})

    def _require_open(self) -> None:
        if not self.opened:
            raise squall.NotFound(f"account {self.id} is not open", field="id")

    def apply_Opened(self, data: dict[str, Any]) -> None:
        self.opened, self.owner = True, data["owner"]

    def apply_Deposited(self, data: dict[str, Any]) -> None:
        self.balance += data["amount"]

    def apply_Withdrawn(self, data: dict[str, Any]) -> None:
        self.balance -= data["amount"]


def refuse(status: int, field: str, message: str) -> squall.Response:
    return squall.Response({"error": {"field": field, "message": message}}, status=status)


@app.http("POST /accounts/{id}/{command}", name="account-command",
          permissions=["events_store:account-*"])
def command(request, ctx):
    """Runs open, deposit or withdraw on the account aggregate."""
    account_id, verb = request.path_params["id"], request.path_params["command"]
    body = request.json() or {}
    if verb not in ("open", "deposit", "withdraw"):
        return refuse(404, "command", f"{verb!r} is not open, deposit or withdraw")
    if verb == "open":
        owner = body.get("owner")
        if not isinstance(owner, str) or not owner:
            return refuse(400, "owner", "an account needs an owner")
        args: list[Any] = [owner]
    else:
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return refuse(400, "amount", "amount must be a positive integer")
        args = [amount]
    try:
        account = Account.load(ctx.events_store, account_id)
        getattr(account, verb)(*args)
        account.save(ctx.events_store)
    except squall.InvalidInput as exc:
        return refuse(400, exc.field or "id", exc.message)
    except (squall.Conflict, squall.NotFound) as exc:
        return refuse(exc.status, exc.field or "id", exc.message)
    return {"id": account_id, "version": account.version, "balance": account.balance}


@app.projection("balances", from_streams=["account-"], partition_key="id")
def balances(event, table, ctx):
    """Keeps each account's balance and movement count for the query side."""
    account_id = event["stream"].removeprefix("account-")
    row = table.get({"id": account_id}) or {"id": account_id, "balance": 0, "movements": 0}
    row.pop("_version", None)
    data = event["data"]
    if event["type"] == "Opened":
        row["owner"] = data["owner"]
    elif event["type"] == "Deposited":
        row["balance"] += data["amount"]
        row["movements"] += 1
    elif event["type"] == "Withdrawn":
        row["balance"] -= data["amount"]
        row["movements"] += 1
    table.put(row)


@app.http("GET /accounts/{id}", name="account-query", permissions=["table.read:balances"])
def query(request, ctx):
    """Answers from the read model, never from the event store."""
    row = ctx.tables["balances"].get({"id": request.path_params["id"]})
    if row is None:
        return refuse(404, "id", "no such account (or the projection has not caught up)")
    row.pop("_version", None)
    return row


@app.on("Withdrawn", permissions=["table:alerts"])
def large_withdrawal(event, ctx):
    """Reacts to appended events on the bus: flags withdrawals of 1000 or more."""
    if event["data"]["amount"] >= 1000:
        ctx.tables["alerts"].put({"id": event["id"], "account": event["subject"],
                                  "amount": event["data"]["amount"]})
