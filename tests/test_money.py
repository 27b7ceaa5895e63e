import pytest

from flask_psp.money import exponent, format_amount, from_decimal_string, numeric_code, to_decimal_string


@pytest.mark.parametrize("currency,exp", [("EUR", 2), ("JPY", 0), ("KWD", 3), ("usd", 2)])
def test_exponents_follow_iso_4217(currency, exp):
    assert exponent(currency) == exp


@pytest.mark.parametrize(
    "amount,currency,text",
    [(1099, "EUR", "10.99"), (5, "EUR", "0.05"), (500, "JPY", "500"), (1234, "KWD", "1.234"), (100000000001, "EUR", "1000000000.01")],
)
def test_decimal_strings_round_trip_without_floats(amount, currency, text):
    assert to_decimal_string(amount, currency) == text
    assert from_decimal_string(text, currency) == amount


def test_too_many_decimals_are_refused():
    with pytest.raises(ValueError):
        from_decimal_string("10.999", "EUR")
    with pytest.raises(ValueError):
        from_decimal_string("1.5", "JPY")


@pytest.mark.parametrize("text", ["Infinity", "-Infinity", "NaN", "sNaN", "1e400", "1e999999999",
                                  "1000000000000000000", "99999999999999999.99"])
def test_amounts_no_payment_can_hold_are_refused(text):
    with pytest.raises(ValueError):
        from_decimal_string(text, "EUR")


def test_the_largest_amount_a_payment_can_hold_is_read():
    assert from_decimal_string("9999999999999999.99", "EUR") == 999999999999999999
    assert from_decimal_string("0", "EUR") == 0 and from_decimal_string("0e5", "EUR") == 0


def test_floats_are_refused():
    with pytest.raises(TypeError):
        to_decimal_string(10.99, "EUR")


def test_numeric_codes_for_sips():
    assert numeric_code("EUR") == "978" and numeric_code("USD") == "840" and numeric_code("JPY") == "392"


def test_amounts_are_shown_per_locale():
    assert format_amount(1234, "EUR", "fr") == "12,34\u00a0€"
    assert format_amount(1234, "EUR", "en") == "€12.34"
    assert format_amount(1234, "JPY", "en") == "¥1,234"
