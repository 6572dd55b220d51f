"""Money for people: integer minor units ("cents") shown with the park's currency.

Amounts are stored as integers in the currency's minor unit (cents for CNY,
EUR or USD; yen for JPY, which has none; fils for KWD, a thousandth). The
convention everywhere a person reads an amount is the ISO 4217 code, a space
and the amount with thousands separators: "CNY 1,234.56", "CNY -0.50",
"JPY 1,234". Machines get `major_units` ("1234.56") next to the integer.
Integer arithmetic only: no float ever touches an amount.
"""

import re

from parkcard.domain.explained import Explained

DEFAULT_CURRENCY = "CNY"

# Active ISO 4217 codes (2024 list). Currencies with no minor unit or with
# three decimals are named apart; every other one has two.
_CODES = frozenset("""
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
    CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ
    GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
    LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split())
_NO_MINOR_UNIT = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split())
_THREE_DECIMALS = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
_SHAPE = re.compile(r"[A-Za-z]{3}\Z")


class CurrencyError(Explained):
    """Not an ISO 4217 currency code."""


def currency_code(text):
    """Return the ISO 4217 code for `text` (any case), or raise CurrencyError."""
    code = text.strip().upper()
    if not _SHAPE.match(code) or code not in _CODES:
        raise CurrencyError("%(text)r is not an ISO 4217 currency code (three letters, e.g. CNY, EUR, USD, HKD)",
                            text=text)
    return code


def decimals(currency):
    """Digits after the decimal point in the currency's minor unit (ISO 4217 exponent)."""
    if currency in _NO_MINOR_UNIT:
        return 0
    return 3 if currency in _THREE_DECIMALS else 2


def _split(cents, currency):
    """(sign, whole units, fraction digits as text) of an integer amount."""
    if not isinstance(cents, int) or isinstance(cents, bool):
        raise TypeError("an amount is integer minor units, not %r" % (cents,))
    places = decimals(currency)
    whole, fraction = divmod(abs(cents), 10 ** places)
    return ("-" if cents < 0 else ""), whole, ("%0*d" % (places, fraction)) if places else ""


def format_cents(cents, currency):
    """An amount for people: "CNY 1,234.56" (code, space, sign, thousands separators)."""
    sign, whole, fraction = _split(cents, currency)
    return "%s %s%s%s" % (currency, sign, format(whole, ","), "." + fraction if fraction else "")


def major_units(cents, currency):
    """An amount for machines in major units, no separators: "1234.56", "-0.50", "1234" for JPY."""
    sign, whole, fraction = _split(cents, currency)
    return "%s%d%s" % (sign, whole, "." + fraction if fraction else "")


class AmountError(Explained):
    """An amount a person typed that is not a whole number of the currency's minor units."""


_AMOUNT = re.compile(r"(\d+)(?:\.(\d+))?\Z")


def parse_amount(text, currency):
    """Integer minor units of an amount a person typed in major units ("12.50" -> 1250 for CNY).

    AmountError for anything but digits with at most the currency's decimals: no sign, no
    separators, no fraction of a cent (text arithmetic, never a float)."""
    places = decimals(currency)
    found = _AMOUNT.match((text or "").strip())
    if found is None or not found.group(0).isascii() or len(found.group(2) or "") > places:
        raise AmountError("%(text)r is not an amount in %(currency)s: digits with at most %(places)d decimals, e.g. "
                          "%(example)s", text=text, currency=currency, places=places,
                          example=major_units(1250 * 10 ** places // 100, currency))
    whole, fraction = found.group(1), (found.group(2) or "")
    return int(whole) * 10 ** places + (int(fraction.ljust(places, "0")) if places else 0)
