"""Reading what a merchant types in the panel's query strings and forms: page links, amounts."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ..i18n import gettext as _
from ..money import from_decimal_string

#: rows per page of the panel's lists
PAGE_SIZE = 50

#: ids and amounts are stored as 64-bit integers (PostgreSQL's bigint): nothing beyond is looked for
LARGEST_STORED_INTEGER = 2**63 - 1


def parse_before(value: str | None) -> int | None:
    """The ``before`` id of a keyset-paginated list: ``parse_before("120") == 120``; blank → None.
    Raises ValueError with a message for anything but a whole number within what ids can be."""
    value = (value or "").strip()
    if not value:
        return None
    if not re.fullmatch(r"[0-9]{1,19}", value) or int(value) > LARGEST_STORED_INTEGER:
        raise ValueError(_("The page link is broken (before=%(value)s): go back to the first page.", value=value[:40]))
    return int(value)


def bounded_amount(value: str, currency: str) -> int:
    """``value`` in minor units of ``currency`` (see :func:`money.from_decimal_string`), refused
    (ValueError) unless it is a finite number that a 64-bit integer can hold — before any large
    number is built (``1e999999999`` would be a billion digits)."""
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValueError(f"not a decimal amount: {value!r}") from None
    if not number.is_finite() or number.adjusted() > 20:
        raise ValueError(f"not an amount that can be paid: {value!r}")
    amount = from_decimal_string(value, currency)
    if abs(amount) > LARGEST_STORED_INTEGER:
        raise ValueError(f"not an amount that can be paid: {value!r}")
    return amount
