"""Check protocol/ against protocol/vectors/vectors.json; runs on MicroPython and CPython.

usage: <interpreter> tests/mpy/protocol_check.py protocol/vectors/vectors.json
Prints one line per check group and "protocol vectors ok <n>" at the end.
"""

import json
import sys

from binascii import hexlify, unhexlify

from protocol import card, card_issue, crypto, frames, hub_frames, record
from protocol.errors import BadMac, Malformed
from vector_checks import checks, expect, refused

def h(s):
    return unhexlify(s)


def main(path):
    with open(path) as f:
        v = json.load(f)
    for case in v["hmac_rfc4231"]:
        expect(crypto.Mac(h(case["key"])).digest(h(case["data"])) == h(case["mac"]), "hmac rfc4231")
    expect(card_issue.APP_ACCESS == h(v["access_app"]), "app access bits")
    expect(card_issue.access_bytes(0, 0, 0, 1) == h(v["access_transport"]), "transport access bits")
    park = card_issue.ParkKeys.unpack(h(v["park_keys"]))
    for c in v["cards"]:
        keys = card.CardKeys(park, h(c["uid"]))
        expect(keys.key_a() == h(c["key_a"]) and keys.key_b() == h(c["key_b"]), "key diversification")
        expect(keys.key_a(2) == h(c["key_a_sector2"]), "per-sector keys")
        f = c["info_fields"]
        info = card.CardInfo(f["card_no"], f["tier"], f["flags"], f["expiry_day"], f["perms"], f["issue_day"],
                             f["deposit_cents"])
        expect(info.encode(keys) == h(c["info_block"]), "info encode")
        back = card.CardInfo.decode(h(c["info_block"]), keys)
        expect(back.card_no == f["card_no"] and back.deposit_cents == f["deposit_cents"], "info decode")
        for name, block in (("slot_block5", 5), ("slot_block6", 6)):
            s = c["slot_fields"]
            slot = card.WalletSlot(s["counter"], s["balance_cents"], s["day_spend_cents"], s["spend_day"],
                                   s["last_terminal"], s["locked"])
            expect(slot.encode(keys, block) == h(c[name]), "slot encode " + name)
            back = card.WalletSlot.decode(h(c[name]), keys, block)
            expect(back.balance_cents == s["balance_cents"] and back.counter == s["counter"], "slot decode")
        s = c["locked_slot_fields"]
        back = card.WalletSlot.decode(h(c["locked_slot_block5"]), keys, 5)
        expect(back.locked and back.balance_cents == s["balance_cents"] and back.counter == 0xFFFF, "locked slot")
        # a slot copied to the other block, a flipped bit, or another card's slot must not verify
        for bad in (lambda: card.WalletSlot.decode(h(c["slot_block5"]), keys, 6),
                    lambda: card.WalletSlot.decode(h(c["slot_block5"])[:-1] + b"\x00", keys, 5),
                    lambda: card.CardInfo.decode(h(c["info_block"]), card.CardKeys(park, b"\x01\x02\x03\x04"))):
            expect(refused(bad, error=BadMac), "tampered block refused")
        expect(card_issue.trailer_block(keys) == h(c["trailer"]), "trailer")
    rmac = record.record_mac_for(h(v["terminal_key"]))
    rec = record.Record.decode(h(v["record"]), rmac)
    rf = v["record_fields"]
    for name in ("kind", "terminal_id", "seq", "time_s", "card_no", "card_counter", "amount_cents",
                 "balance_after_cents", "item", "discount_cents", "flags", "config_version"):
        expect(getattr(rec, name) == rf[name], "record field " + name)
    expect(hexlify(rec.uid).decode() == rf["uid"], "record uid")
    again = record.Record(rec.kind, rec.terminal_id, rec.seq, rec.time_s, rec.card_no, rec.uid, rec.card_counter,
                          rec.amount_cents, rec.balance_after_cents, rec.item, rec.discount_cents, rec.flags,
                          rec.config_version, rec.card_mac)
    expect(again.encode(rmac) == h(v["record"]), "record encode")
    try:
        record.Record.decode(h(v["record"]), record.record_mac_for(b"\x00" * 32))
        expect(False, "record with wrong key accepted")
    except BadMac:
        expect(True, "record wrong key")
    for case in v["records_v2"]:
        rf = case["fields"]
        raw = h(case["record"])
        rec = record.Record.decode(raw, rmac)
        for name in ("version", "kind", "seq", "card_no", "card_counter", "amount_cents", "balance_after_cents",
                     "item", "discount_cents", "deposit_cents", "ref_seq", "config_version"):
            expect(getattr(rec, name) == rf[name], "v2 record field " + name)
        expect(len(raw) == record.RECORD_V2_SIZE and raw[0] == record.RECORD_V2, "v2 record size")
        again = record.Record(rec.kind, rec.terminal_id, rec.seq, rec.time_s, rec.card_no, rec.uid,
                              rec.card_counter, rec.amount_cents, rec.balance_after_cents, rec.item,
                              rec.discount_cents, rec.flags, rec.config_version, rec.card_mac, rec.deposit_cents,
                              rec.ref_seq, rec.version)
        expect(again.encode(rmac) == raw, "v2 record encode")
        # cut to a version 1 size, or a version 1 byte on version 2 bytes: refused, never misread
        expect(refused(record.Record.decode, raw[:record.RECORD_SIZE], rmac, error=Malformed), "v2 truncated")
        expect(refused(record.Record.decode, b"\x01" + raw[1:], rmac, error=Malformed), "v2 bytes as v1")
        flipped = bytearray(raw)
        flipped[50] ^= 1                      # inside deposit_cents / ref_seq: covered by the MAC
        expect(refused(record.Record.decode, bytes(flipped), rmac, error=BadMac), "v2 fields under the MAC")
    v1_deposit = record.Record(record.KIND_ISSUE, 1, 1, 0, 1, b"\x01\x02\x03\x04", 1, 100, 100, deposit_cents=5)
    expect(refused(v1_deposit.encode, rmac, error=Malformed), "v1 has no deposit field")
    fmac = frames.frame_mac_for(h(v["terminal_key"]))
    mixed = hub_frames.parse_upload(frames.decode(fmac, h(v["frame_upload_mixed"])).body)
    expect(mixed == [(record.STATUS_COMMITTED, h(v["record"])),
                     (record.STATUS_UNCERTAIN, h(v["records_v2"][1]["record"]))], "upload of v1 and v2 records")
    fr = frames.decode(fmac, h(v["frame_upload"]))
    expect(fr.type == frames.T_UPLOAD and fr.terminal_id == 12 and fr.counter == 9, "upload header")
    entries = hub_frames.parse_upload(fr.body)
    expect(len(entries) == 1 and entries[0][0] == record.STATUS_COMMITTED and entries[0][1] == h(v["record"]),
           "upload body")
    # A terminal's uploads, encoded into the one buffer it keeps for them: the same bytes, the tail untouched.
    kept = bytearray(b"\xee" * (len(h(v["frame_upload"])) + 3))
    parts = frames.upload_parts([(record.STATUS_COMMITTED, h(v["record"]))])
    view = frames.encode_into(kept, fmac, frames.T_UPLOAD, 12, 9, fr.time_s, parts)
    expect(bytes(view) == h(v["frame_upload"]) and kept[len(view):] == b"\xee" * 3, "upload encoded into a buffer")
    expect(refused(frames.encode_into, bytearray(len(view) - 1), fmac, frames.T_UPLOAD, 12, 9, fr.time_s, parts,
                   error=Malformed), "a frame larger than its buffer refused")
    cfg = frames.Config.decode(frames.decode(fmac, h(v["frame_config"])).body)
    expect(cfg.role == frames.ROLE_RIDE and cfg.fixed_price_cents == 500 and cfg.category == 2, "config")
    longer = frames.Config.decode(frames.decode(fmac, h(v["frame_config_longer"])).body)
    expect(longer.fixed_price_cents == cfg.fixed_price_cents and longer.tail
           and longer.encode() == cfg.encode() + longer.tail, "a longer config's tail is kept for the role, not read")
    expect(refused(frames.Config.decode, cfg.encode()[:-1], error=Malformed), "a short config refused")
    expect(hub_frames.parse_sync(frames.decode(fmac, h(v["frame_sync"])).body) == (6, 4, 256), "sync")
    expect(hub_frames.parse_sync(frames.decode(fmac, h(v["frame_sync"])).body[:6]) == (6, 4, 0), "short sync")
    bl = frames.parse_blacklist(frames.decode(fmac, h(v["frame_blacklist"])).body)
    expect(bl[0] == 5 and bl[1] == 6 and tuple(bl[5]) == (100042, 100050) and tuple(bl[6]) == (99,), "blacklist")
    raw = bytearray(h(v["frame_upload"]))
    raw[20] ^= 1
    for bad, err in ((bytes(raw), BadMac), (h(v["frame_upload"])[:-1], Malformed), (b"XX" + h(v["frame_upload"])[2:], Malformed)):
        expect(refused(frames.decode, fmac, bad, error=err), "bad frame refused")
    print("protocol vectors ok", checks[0])


main(sys.argv[1])
