"""Tier discounts on a basket, in integer cents (SPEC.md §7.3): the terminal prices a sale offline with
these functions and the hub re-prices the record with the same ones, so both reach the same cents.

Stacking policy, multiplicative: each line gets one rate, the first that exists of the tier's override
for the item, the tier's override for the item's category, the tier's discount on every sale; the tier's
discount on the total then applies to what the lines cost after their discounts. Multiplicative because
the discounts combine (the park's 优惠可以联合使用, which best-price would not honour) and their sum can
never pass 100 % of the price (additive 60 % + 50 % would), whatever the operator configures.

Rounding rule, floor of each discount: a line's discount is floor(quantity x unit price x rate / 10,000)
and the total's floor(subtotal x total rate / 10,000), each to the cent, so a fraction of a cent of
discount is never given and no discount is ever more than its stated rate. Rates are basis points.
"""

from protocol.card import BALANCE_MAX_CENTS

RATE_BP_MAX = 10000        # 100 %
TIERS_MAX = 16             # the card's tier is 4 bits (SPEC.md §3.3)
LINES_MAX = 8              # lines in one basket, what a booth's keypad and display handle
QUANTITY_MAX = 99
ITEM_CODE_MAX = 0xFFFF     # a record's item field is 2 bytes (SPEC.md §4.1); 0 is a keyed amount
CATEGORY_MAX = 0xFF
FREE_AMOUNT = 0            # the item code of a line whose amount the vendor keys
OVERRIDE_ITEM = 0
OVERRIDE_CATEGORY = 1
OVERRIDES_MAX = 256


class Refused(ValueError):
    """A basket that cannot be priced; `reason` is a short stable code, the message says what to change."""

    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason


def rate_key(tier, kind, code):
    """The dictionary key of an override: one small int, no tuple on the terminal's heap."""
    return (tier << 17) | (kind << 16) | code


class Discounts:
    """A version of the park's discount rules for one merchant: per tier a rate on every sale and a rate
    on the total, and per tier overrides by item code or category."""

    def __init__(self, version=0, sale_bp=(), total_bp=(), overrides=None):
        self.version = version
        self.sale_bp = list(sale_bp) + [0] * (TIERS_MAX - len(sale_bp))
        self.total_bp = list(total_bp) + [0] * (TIERS_MAX - len(total_bp))
        self.overrides = overrides if overrides is not None else {}

    def set_override(self, tier, kind, code, rate_bp):
        """Set the rate of tier's sales of one item (kind OVERRIDE_ITEM) or category (OVERRIDE_CATEGORY)."""
        self.overrides[rate_key(tier, kind, code)] = rate_bp

    def line_rate(self, tier, item, category):
        """The rate of one line: item override, else category override, else the tier's rate."""
        rate = self.overrides.get(rate_key(tier, OVERRIDE_ITEM, item)) if item != FREE_AMOUNT else None
        if rate is None and item != FREE_AMOUNT:
            rate = self.overrides.get(rate_key(tier, OVERRIDE_CATEGORY, category))
        return self.sale_bp[tier] if rate is None else rate

    def check(self):
        """Raise Refused("bad_rules") when a rate, tier or code is out of its range."""
        rates = self.sale_bp + self.total_bp + list(self.overrides.values())
        if len(self.sale_bp) != TIERS_MAX or len(self.total_bp) != TIERS_MAX or len(self.overrides) > OVERRIDES_MAX:
            raise Refused("bad_rules", "discount rules: %d tiers and at most %d overrides" % (TIERS_MAX, OVERRIDES_MAX))
        for rate in rates:
            if not 0 <= rate <= RATE_BP_MAX:
                raise Refused("bad_rules", "discount rate %r bp outside 0..%d" % (rate, RATE_BP_MAX))
        for key in self.overrides:
            kind, code = (key >> 16) & 1, key & 0xFFFF
            if key >> 17 >= TIERS_MAX or (kind == OVERRIDE_CATEGORY and code > CATEGORY_MAX) or (
                    kind == OVERRIDE_ITEM and code == FREE_AMOUNT):
                raise Refused("bad_rules", "override of tier %d, code %d" % (key >> 17, code))


def discount_of(amount_cents, rate_bp):
    """floor(amount_cents x rate_bp / 10,000), split so that no product passes 2^30: on an ESP32 a
    larger int is a heap allocation (8,388,607 x 10,000 would be one)."""
    return (amount_cents // 10000) * rate_bp + (amount_cents % 10000) * rate_bp // 10000


class Price:
    """What a basket costs: its list total, each line's discount, the discount on the total, what to pay."""

    def __init__(self, gross_cents, line_discounts, total_discount_cents):
        self.gross_cents = gross_cents
        self.line_discounts = line_discounts
        self.total_discount_cents = total_discount_cents
        self.discount_cents = sum(line_discounts) + total_discount_cents
        self.pay_cents = gross_cents - self.discount_cents


def price_basket(rules, tier, lines, free_allowed=False):
    """Price [(item, category, quantity, unit_price_cents)] for a card of this tier (SPEC.md §7.3).

    A free amount line is (FREE_AMOUNT, 0, 1, keyed cents), allowed only when the merchant allows it;
    it takes the tier's rate on every sale and no override.
    """
    if not 0 < len(lines) <= LINES_MAX:
        raise Refused("bad_basket", "a basket holds 1 to %d lines, not %d" % (LINES_MAX, len(lines)))
    if not 0 <= tier < TIERS_MAX:
        raise Refused("bad_basket", "tier %r outside 0..%d" % (tier, TIERS_MAX - 1))
    gross = 0
    net = 0
    line_discounts = []
    for item, category, quantity, unit_cents in lines:
        if item == FREE_AMOUNT and not free_allowed:
            raise Refused("free_amount", "this booth sells by item code only: key an item")
        if not (0 <= item <= ITEM_CODE_MAX and 0 <= category <= CATEGORY_MAX and 0 < quantity <= QUANTITY_MAX
                and 0 < unit_cents <= BALANCE_MAX_CENTS and (item != FREE_AMOUNT or quantity == 1)):
            raise Refused("bad_line", "line %r: quantity 1..%d, price 1..%d cents"
                          % ((item, category, quantity, unit_cents), QUANTITY_MAX, BALANCE_MAX_CENTS))
        line_cents = quantity * unit_cents     # at most 99 x 8,388,607 < 2^30
        gross += line_cents
        if gross > BALANCE_MAX_CENTS:
            raise Refused("over_max", "the basket's list total passes %d cents, the most a card holds"
                          % BALANCE_MAX_CENTS)
        off = discount_of(line_cents, rules.line_rate(tier, item, category))
        line_discounts.append(off)
        net += line_cents - off
    return Price(gross, line_discounts, discount_of(net, rules.total_bp[tier]))
