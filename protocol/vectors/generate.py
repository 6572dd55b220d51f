"""Regenerate vectors.json from the reference implementation (CPython; run from the repo root).

    .venv/bin/python protocol/vectors/generate.py

Only regenerate on a deliberate format change: the file freezes the bytes
terminals already in the field speak.
"""

import json
import os

from protocol import card, card_issue, frames, hub_frames, record

HERE = os.path.dirname(os.path.abspath(__file__))
PARK = card_issue.ParkKeys(bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96)))
TERMINAL_KEY = bytes(range(100, 132))
TIME_S = 1795600000  # 2026-11-25T10:26:40Z


def card_case(uid):
    """Keys and blocks of one card."""
    keys = card.CardKeys(PARK, uid)
    info = card.CardInfo(card_no=100042, tier=card.TIER_GOLD, flags=0, expiry_day=20800, perms=0x000F,
                         issue_day=20782, deposit_cents=500)
    slot = card.WalletSlot(counter=7, balance_cents=12345, day_spend_cents=250, spend_day=20782,
                           last_terminal=12, locked=False)
    locked = card.WalletSlot(counter=0xFFFF, balance_cents=card.BALANCE_MAX_CENTS, day_spend_cents=0,
                             spend_day=20782, last_terminal=65535, locked=True)
    return {
        "uid": uid.hex(),
        "key_a": keys.key_a().hex(),
        "key_b": keys.key_b().hex(),
        "key_a_sector2": keys.key_a(2).hex(),
        "info_fields": vars(info),
        "info_block": info.encode(keys).hex(),
        "slot_fields": {k: v for k, v in vars(slot).items() if k != "mac"},
        "slot_block5": slot.encode(keys, 5).hex(),
        "slot_block6": slot.encode(keys, 6).hex(),
        "locked_slot_fields": {k: v for k, v in vars(locked).items() if k != "mac"},
        "locked_slot_block5": locked.encode(keys, 5).hex(),
        "trailer": card_issue.trailer_block(keys).hex(),
    }


def _fields(rec):
    """A record's fields as JSON values (bytes in hex), without its MAC; version 2 fields for version 2."""
    out = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in vars(rec).items() if k != "mac"}
    if rec.version != record.RECORD_VERSION:
        out.update(version=rec.version, deposit_cents=rec.deposit_cents, ref_seq=rec.ref_seq)
    return out


def main():
    """Write vectors.json."""
    uid7 = bytes.fromhex("04a1b2c3d4e5f6")
    rec = record.Record(record.KIND_DEBIT, 12, 345, TIME_S, 100042, uid7, 8, 250, 12095, item=3,
                        discount_cents=25, flags=record.FLAG_OFFLINE, config_version=4,
                        card_mac=bytes.fromhex("a1b2c3d4"))
    rmac = record.record_mac_for(TERMINAL_KEY)
    rec_bytes = rec.encode(rmac)
    # Version 2 (SPEC.md §4.1): a desk issue with its deposit, and a booth refund naming its sale (seq 345).
    issue = record.Record(record.KIND_ISSUE, 12, 340, TIME_S - 600, 100042, uid7, 1, 5500, 5500, discount_cents=500,
                          config_version=4, card_mac=bytes.fromhex("c1c2c3c4"), deposit_cents=500,
                          version=record.RECORD_V2)
    refund = record.Record(record.KIND_REFUND, 12, 346, TIME_S + 60, 100042, uid7, 9, 250, 12345, item=3,
                           config_version=4, card_mac=bytes.fromhex("b1b2b3b4"), ref_seq=345,
                           version=record.RECORD_V2)
    v2 = [(r, r.encode(rmac)) for r in (issue, refund)]
    fmac = frames.frame_mac_for(TERMINAL_KEY)
    upload = frames.encode(fmac, frames.T_UPLOAD, 12, 9, TIME_S,
                           hub_frames.upload_body([(record.STATUS_COMMITTED, rec_bytes)]))
    mixed = frames.encode(fmac, frames.T_UPLOAD, 12, 10, TIME_S + 60,
                          hub_frames.upload_body([(record.STATUS_COMMITTED, rec_bytes),
                                              (record.STATUS_UNCERTAIN, v2[1][1])]))
    cfg = frames.Config(version=4, role=frames.ROLE_RIDE, merchant_id=3, fixed_price_cents=500,
                        tx_cap_cents=5000, daily_cap_cents=20000, max_offline_s=86400,
                        blacklist_max_age_s=43200, category=2, park_id=1)
    config = frames.encode(fmac, frames.T_CONFIG, 12, 77, TIME_S, cfg.encode())
    # A newer hub's config: three bytes of fields this terminal does not know after the 29 it does.
    config_tail = frames.encode(fmac, frames.T_CONFIG, 12, 79, TIME_S, cfg.encode() + b"\x01\x02\x03")
    sync = frames.encode(fmac, frames.T_SYNC, 12, 11, TIME_S, frames.sync_body(6, 4, 256))
    bl = frames.encode(fmac, frames.T_BLACKLIST, 12, 78, TIME_S,
                       hub_frames.blacklist_body(5, 6, frames.BL_DELTA, 0, 1, [100042, 100050], [99]))
    out = {
        "park_keys": PARK.pack().hex(),
        "terminal_key": TERMINAL_KEY.hex(),
        "hmac_rfc4231": [
            {"key": "0b" * 20, "data": b"Hi There".hex(),
             "mac": "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
            {"key": b"Jefe".hex(), "data": b"what do ya want for nothing?".hex(),
             "mac": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        ],
        "access_app": card_issue.APP_ACCESS.hex(),
        "access_transport": card_issue.access_bytes(0, 0, 0, 0b001).hex(),
        "cards": [card_case(bytes.fromhex("a1b2c3d4")), card_case(uid7)],
        "record_fields": _fields(rec),
        "record": rec_bytes.hex(),
        "records_v2": [{"fields": _fields(r), "record": raw.hex()} for r, raw in v2],
        "frame_upload": upload.hex(),
        "frame_upload_mixed": mixed.hex(),
        "frame_config": config.hex(),
        "frame_config_longer": config_tail.hex(),
        "frame_sync": sync.hex(),
        "frame_blacklist": bl.hex(),
        "time_s": TIME_S,
    }
    with open(os.path.join(HERE, "vectors.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
