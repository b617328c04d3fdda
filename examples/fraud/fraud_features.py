"""The features a payment is scored on, shared by the training script and the app.

A payment is ``{"id", "amount", "hour", "country", "card_country", "velocity"}``: its amount,
the local hour (0-23) it was made at, where it was made and where the card was issued, and
how many payments the card made in the hour before.
"""

from __future__ import annotations

import math
from typing import Any

NAMES = ("log_amount", "night", "country_mismatch", "velocity")


def features(payment: dict[str, Any]) -> list[float]:
    return [
        math.log1p(float(payment["amount"])),
        1.0 if int(payment["hour"]) < 6 else 0.0,
        1.0 if payment["country"] != payment["card_country"] else 0.0,
        float(payment["velocity"]),
    ]


def problem(payment: object) -> tuple[str, str] | None:
    """The first field that is missing or wrong, with what is wrong, or None."""
    if not isinstance(payment, dict):
        return "payment", "a payment is a JSON object"
    if not isinstance(payment.get("id"), str) or not payment["id"]:
        return "id", "id must be a non-empty string"
    amount = payment.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not amount > 0:
        return "amount", "amount must be a positive number"
    hour = payment.get("hour")
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        return "hour", "hour must be an integer from 0 to 23"
    for field in ("country", "card_country"):
        value = payment.get(field)
        if not isinstance(value, str) or len(value) != 2 or not value.isalpha():
            return field, f"{field} must be a two-letter country code"
    velocity = payment.get("velocity")
    if isinstance(velocity, bool) or not isinstance(velocity, int) or velocity < 0:
        return "velocity", "velocity must be a non-negative integer"
    return None
