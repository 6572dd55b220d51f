"""Money for people: integer minor units with the currency, no floats."""

import pytest

from parkcard.money import CurrencyError, currency_code, format_cents, major_units


@pytest.mark.parametrize("cents, currency, shown, machine", [
    (123456, "CNY", "CNY 1,234.56", "1234.56"),
    (5, "CNY", "CNY 0.05", "0.05"),
    (0, "EUR", "EUR 0.00", "0.00"),
    (-50, "CNY", "CNY -0.50", "-0.50"),
    (-123456789, "USD", "USD -1,234,567.89", "-1234567.89"),
    (1234, "JPY", "JPY 1,234", "1234"),
    (1234567, "KWD", "KWD 1,234.567", "1234.567"),
    (10 ** 20 + 1, "CNY", "CNY 1,000,000,000,000,000,000.01", "1000000000000000000.01"),   # exact, no float
])
def test_amounts_are_shown_with_their_currency(cents, currency, shown, machine):
    assert format_cents(cents, currency) == shown
    assert major_units(cents, currency) == machine


@pytest.mark.parametrize("amount", [12.34, "1234", True, None])
def test_only_integer_cents_are_money(amount):
    with pytest.raises(TypeError):
        format_cents(amount, "CNY")


def test_currency_codes_are_iso_4217():
    assert currency_code(" hkd ") == "HKD"
    for text in ("EUX", "RMB", "EURO", "E1R", "", "¥"):
        with pytest.raises(CurrencyError, match="not an ISO 4217"):
            currency_code(text)
