"""What the plugin needs to know of a shop's order, and the adapter a shop writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .models import Payment


@dataclass
class OrderInfo:
    """An order as the shop's ``orders.get(ref)`` describes it. ``amount`` is an integer in the
    currency's minor unit (1999 = 19.99 EUR)."""

    reference: str
    amount: int
    currency: str
    email: str | None = None
    description: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None  # ISO 3166 alpha-2
    locale: str | None = None  # "fr", "en"…

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"OrderInfo.amount must be an int in minor units, got {self.amount!r}")
        if self.amount <= 0:
            raise ValueError("OrderInfo.amount must be positive")
        self.currency = self.currency.upper()


class OrderAdapter(Protocol):
    """What ``PSP(orders=...)`` expects of the shop's adapter: any object with these two methods."""

    def get(self, order_ref: str) -> OrderInfo | None:
        """The order as an :class:`OrderInfo`, or None for an order that cannot be paid."""

    def mark_paid(self, order_ref: str, payment: "Payment") -> None:
        """Called once per order inside the transaction that moves its payment to paid."""
