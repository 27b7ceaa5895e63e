"""Amounts in minor units, and the only places they become decimal strings.

Amounts are integers in the currency's minor unit everywhere in flask-psp (1234 EUR = 12.34 €,
1234 JPY = ¥1,234, 1234 KWD = 1.234 KD). Providers that want a decimal on the wire call
:func:`to_decimal_string`; a decimal coming back is parsed with :func:`from_decimal_string`.
No float is ever involved.
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation

from iso4217 import Currency


#: amounts are stored as 64-bit integers: an amount of this many digits (in minor units) or more
#: cannot be one
MAX_DIGITS = 18


class UnknownCurrency(ValueError):
    pass


def _currency(code: str) -> Currency:
    try:
        currency = Currency(code.upper())
    except (ValueError, KeyError, AttributeError):
        raise UnknownCurrency(f"unknown ISO 4217 currency {code!r}") from None
    if currency.exponent is None:  # XAU, XDR…: not a currency one pays in
        raise UnknownCurrency(f"{code!r} has no minor unit and cannot be used for payments")
    return currency


def exponent(code: str) -> int:
    """ISO 4217 exponent: ``exponent("EUR") == 2``, ``exponent("JPY") == 0``, ``exponent("KWD") == 3``."""
    return _currency(code).exponent


def numeric_code(code: str) -> str:
    """ISO 4217 numeric code as three digits: ``numeric_code("EUR") == "978"``."""
    return f"{_currency(code).number:03d}"


def is_currency(code: str) -> bool:
    try:
        _currency(code)
    except UnknownCurrency:
        return False
    return True


def to_decimal(amount: int, currency: str) -> Decimal:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError(f"amounts are integers in minor units, got {amount!r}")
    return Decimal(amount).scaleb(-exponent(currency))


def to_decimal_string(amount: int, currency: str) -> str:
    """``to_decimal_string(1099, "EUR") == "10.99"``; ``to_decimal_string(500, "JPY") == "500"``."""
    exp = exponent(currency)
    value = to_decimal(amount, currency)
    return f"{value:.{exp}f}"


def from_decimal_string(value: str, currency: str) -> int:
    """``from_decimal_string("10.99", "EUR") == 1099``; refuses more decimals than the currency has."""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    # checked before scaling, so that "1e999999999" never becomes a huge integer
    if number and number.adjusted() + exponent(currency) >= MAX_DIGITS:
        raise ValueError(f"{value!r} is larger than any amount a payment can hold")
    scaled = number.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value!r} has more decimals than {currency} allows")
    return int(scaled)


def format_amount(amount: int, currency: str, locale: str = "en") -> str:
    """Locale-aware display: ``format_amount(1234, "EUR", "fr") == "12,34\u00a0€"``."""
    if not isinstance(amount, int) or isinstance(amount, bool):  # checked before the cache: 1.0 == 1 == True
        raise TypeError(f"amounts are integers in minor units, got {amount!r}")
    return _formatted(amount, currency, locale)


@functools.lru_cache(maxsize=4096)  # a page of charts formats the same amounts again and again
def _formatted(amount: int, currency: str, locale: str) -> str:
    from babel.numbers import format_currency

    return format_currency(to_decimal(amount, currency), currency.upper(), locale=_babel_locale(locale))


@functools.lru_cache(maxsize=32)
def _babel_locale(name: str):
    """Babel's parsed locale, once per name: parsing it is most of a formatting's cost (a page of
    the overview formats hundreds of amounts)."""
    from babel import Locale

    return Locale.parse(name)
