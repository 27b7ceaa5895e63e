"""What the plugin needs to know of a shop's order, and the adapter a shop writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .models import Payment


#: what the shop says of how the order reaches the buyer (``OrderInfo.delivery_type``); each
#: provider maps it to its own vocabulary (see each provider's page)
DELIVERY_TYPES = ("shipped", "digital", "pickup", "travel_or_event", "other")


@dataclass
class Address:
    """A buyer's billing or shipping address, every part optional. ``country`` is ISO 3166-1
    alpha-2 (``FR``); ``phone`` is in E.164 form (``+33612345678``). Issuers decide 3-D Secure
    (PSD2) from such data: the more the shop gives, the more payments pass without a challenge."""

    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    line1: str | None = None
    line2: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None
    phone: str | None = None

    def __post_init__(self) -> None:
        for name in ("first_name", "last_name", "company", "line1", "line2", "postcode", "city", "country", "phone"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"Address.{name} must be a string or None, got {value!r}")
            setattr(self, name, (value.strip() or None) if isinstance(value, str) else None)
        if self.country is not None:
            if not (len(self.country) == 2 and self.country.isascii() and self.country.isalpha()):
                raise ValueError(f"Address.country must be an ISO 3166-1 alpha-2 code such as FR, not {self.country!r}")
            self.country = self.country.upper()
        if self.phone is not None:
            compact = "".join(self.phone.split()).replace("-", "").replace(".", "")
            if not (compact.startswith("+") and compact[1:].isdigit() and 8 <= len(compact) <= 16):
                raise ValueError(f"Address.phone must be in E.164 form such as +33612345678, not {self.phone!r}")
            self.phone = compact

    def is_empty(self) -> bool:
        return not any(vars(self).values())

    def same_place(self, other: "Address | None") -> bool:
        """Does ``other`` name the same place (names and phone aside)?"""
        parts = ("company", "line1", "line2", "postcode", "city", "country")
        return other is not None and all(getattr(self, p) == getattr(other, p) for p in parts)


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
    #: PSD2 buyer data (after the fields above: OrderInfo's positional order is a fixed contract)
    billing: Address | None = None
    shipping: Address | None = None  # None: shipped to the billing address, or not shipped at all
    delivery_type: str | None = None  # one of DELIVERY_TYPES

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"OrderInfo.amount must be an int in minor units, got {self.amount!r}")
        if self.amount <= 0:
            raise ValueError("OrderInfo.amount must be positive")
        self.currency = self.currency.upper()
        if self.delivery_type is not None and self.delivery_type not in DELIVERY_TYPES:
            raise ValueError(f"OrderInfo.delivery_type must be one of {', '.join(DELIVERY_TYPES)}")
        for name in ("billing", "shipping"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), Address):
                raise TypeError(f"OrderInfo.{name} must be a flask_psp.Address or None")

    def billing_address(self) -> Address | None:
        """``billing``, or the address the older flat fields give (first_name, address_line1…)."""
        if self.billing is not None:
            return None if self.billing.is_empty() else self.billing
        return flat_address(self.first_name, self.last_name, self.address_line1, self.address_line2, self.postcode,
                            self.city, self.country)


def flat_address(first_name: str | None, last_name: str | None, line1: str | None, line2: str | None,
                 postcode: str | None, city: str | None, country: str | None) -> Address | None:
    """The :class:`Address` of OrderInfo's older flat fields (None when all are empty). They were
    never checked: a country that is no alpha-2 code is left out rather than refused."""
    country = (country or "").strip()
    address = Address(first_name=first_name, last_name=last_name, line1=line1 or None, line2=line2 or None,
                      postcode=postcode or None, city=city or None,
                      country=country if len(country) == 2 and country.isascii() and country.isalpha() else None)
    return None if address.is_empty() else address


class OrderAdapter(Protocol):
    """What ``PSP(orders=...)`` expects of the shop's adapter: any object with these two methods."""

    def get(self, order_ref: str) -> OrderInfo | None:
        """The order as an :class:`OrderInfo`, or None for an order that cannot be paid."""

    def mark_paid(self, order_ref: str, payment: "Payment") -> None:
        """Called once per order inside the transaction that moves its payment to paid."""
