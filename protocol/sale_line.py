"""A booth sale's lines as records of kind 17 (SPEC.md §4.11): journalled just before the debit they price,
read by the hub to price the sale again. Only a booth and the hub import this.
"""

import struct

from protocol.record import KIND_SALE_LINE, Record


def line_detail(tier, index, count):
    """A sale line's config_version field (SPEC.md §4.11): the card's tier, the line's index and the line count."""
    return (tier << 8) | (index << 4) | count


def line_fields(rec):
    """(tier, index, count, list_version, rules_version) of a sale line record (SPEC.md §4.11)."""
    d = rec.config_version
    m = rec.card_mac
    return d >> 8, (d >> 4) & 0xF, d & 0xF, rec.balance_after_cents, (m[0] << 24) | (m[1] << 16) | (m[2] << 8) | m[3]


def sale_line(sale, item, quantity, line_cents, line_discount_cents, tier, index, count, list_version,
              rules_version):
    """The record of line index (of count) of the debit record `sale`, journalled before it (SPEC.md §4.11)."""
    line = Record(KIND_SALE_LINE, sale.terminal_id, sale.seq - count + index, sale.time_s, sale.card_no, sale.uid,
                  sale.card_counter, line_cents, list_version, item, line_discount_cents, sale.flags,
                  line_detail(tier, index, count), struct.pack(">I", rules_version))
    line.quantity = quantity
    return line


def sale_seq_of(rec):
    """The seq of the debit a sale line prices: journalled right after the basket's last line."""
    d = rec.config_version
    return rec.seq + (d & 0xF) - ((d >> 4) & 0xF)
