"""Rule targets for ``app.rule(..., targets=[...])``.

app.rule(
    "orders-out",
    event_type="order.placed",
    targets=[
        squall.targets.Function("fraud-check", input_path="$.data"),
        squall.targets.Bus("audit"),
        squall.targets.Queue("emails", input_path="$.data"),
        squall.targets.Http(
            "https://hooks.example.com/orders",
            headers={"Authorization": "Bearer ..."},
            retry=squall.targets.RetryPolicy(max_attempts=10, max_event_age_s=3600),
        ),
    ],
)
"""

from squall.model.targets import BusTarget as Bus
from squall.model.targets import FunctionTarget as Function
from squall.model.targets import HttpTarget as Http
from squall.model.targets import InputTransformer, RetryPolicy
from squall.model.targets import QueueTarget as Queue

__all__ = ["Bus", "Function", "Http", "InputTransformer", "Queue", "RetryPolicy"]
